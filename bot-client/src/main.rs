//! The `ticksync-bot` binary: parses the configuration, runs the bots on the
//! chosen tokio runtime, shows a live progress line on stderr, prints a summary
//! and optionally writes the JSON report.
//!
//! Exit codes: 0 pass, 1 desync or too few bots connected (or an I/O failure),
//! 2 bad arguments.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use ticksync_bot::{BotConfig, Progress, Report, RuntimeKind, run_with_progress};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = BotConfig::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match run_bots(config) {
        Ok(report) if report.passed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_bots(config: BotConfig) -> anyhow::Result<Report> {
    eprintln!(
        "ticksync-bot: {} bots -> {} for {:?} (ramp-up {:?}, {} inputs/s, {} runtime{})",
        config.bots,
        config.url,
        config.duration,
        config.ramp_up,
        config.input_rate,
        config
            .runtime
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned()),
        if config.reconnect { ", reconnect" } else { "" }
    );
    let runtime = match config.runtime {
        RuntimeKind::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        RuntimeKind::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .context("building the tokio runtime")?;
    let json = config.json.clone();
    let show_progress = !config.no_progress;
    let tty = std::io::stderr().is_terminal();
    let report = runtime.block_on(run_with_progress(config, |p: &Progress| {
        if show_progress {
            let mut err = std::io::stderr().lock();
            // On a terminal the line updates in place; in a log, one line a second.
            let _ = if tty {
                write!(err, "\r\x1b[2K{p}")
            } else {
                writeln!(err, "{p}")
            };
            let _ = err.flush();
        }
    }))?;
    if show_progress && tty {
        eprintln!();
    }
    print!("{report}");
    if let Some(path) = json {
        std::fs::write(&path, report.to_json() + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
        println!("  report      {}", path.display());
    }
    Ok(report)
}
