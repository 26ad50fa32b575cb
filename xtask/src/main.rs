//! `cargo xtask`: Ticksync's project tasks, in Rust so they run wherever cargo
//! does (the xtask pattern: a workspace member that is never published, reached
//! through the `xtask` alias in `.cargo/config.toml`).
//!
//! - `cargo xtask test [ARGS]`: installs what the suite needs when it is missing
//!   ([`provision`]), then runs `cargo test --workspace --no-fail-fast [ARGS]`. This is the
//!   README's test command and the last step of `.ci/run`.
//! - `cargo xtask provision`: only the installing part.
//! - `cargo xtask sync-web`: refreshes the server's copy of the web demo
//!   (`server/web/`) from `clients/web/` ([`web`]).
//! - `cargo xtask supply-chain`: cargo-deny (licenses, bans, sources, and the
//!   advisories where a RustSec database is at hand) and `npm audit` of the web
//!   client ([`supply_chain`]); a step of `.ci/run`.

mod provision;
mod supply_chain;
mod web;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Result;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [ARGS]   install what the test suite needs when missing (Debian packages,
                the web client's npm dependencies), then `cargo test --workspace [ARGS]`
  provision     only install what the test suite needs
  sync-web      copy the web demo and JS library from clients/web/ into server/web/
  supply-chain  cargo deny (licenses, bans, sources; advisories where a RustSec
                database is at hand: TICKSYNC_ADVISORIES=fetch) and npm audit
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("test") => test(&rest),
        Some("provision") => provision_all(),
        Some("sync-web") => sync_web(),
        Some("supply-chain") => supply_chain::check(&root()).map(|()| ExitCode::SUCCESS),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask/ lives directly under it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

fn provision_all() -> Result<ExitCode> {
    provision::debian()?;
    provision::npm(&root().join("clients/web"))?;
    Ok(ExitCode::SUCCESS)
}

fn sync_web() -> Result<ExitCode> {
    let changed = web::sync(&root())?;
    if changed.is_empty() {
        eprintln!("xtask: server/web/ already matches clients/web/");
    }
    for line in changed {
        eprintln!("xtask: {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the variables `cargo run` set for xtask itself from `cmd`'s
/// environment. A build script's `rerun-if-env-changed` is checked against
/// cargo's own environment (ring names `CARGO_MANIFEST_DIR` and
/// `CARGO_PKG_NAME`): the suite's cargo must see the same values as the
/// `cargo build` its tests run (tests/common/bins.rs strips the same set),
/// or each rebuilds ring, rustls and the binaries after the other.
fn strip_crate_vars(cmd: &mut Command) {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| {
            EXACT.contains(&n) || n.starts_with("CARGO_PKG_") || n.starts_with("CARGO_BIN_")
        }) {
            cmd.env_remove(name);
        }
    }
}

/// Provisions, then runs the whole suite with `cargo test --workspace`.
fn test(args: &[String]) -> Result<ExitCode> {
    let start = Instant::now();
    provision_all()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut suite = Command::new(cargo);
    suite
        .current_dir(root())
        // Every failing test binary is reported, not only the first.
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(args);
    strip_crate_vars(&mut suite);
    // The tests find a program through its variable (CHROMIUM_PATH) where it has
    // one: point it at the one found here, wherever on PATH that was.
    for tool in provision::DEBIAN {
        if let (Some(var), Some(path)) = (tool.path_env, provision::locate(tool)) {
            suite.env(var, path);
        }
    }
    let status = suite.status()?;
    eprintln!(
        "xtask: test suite {} in {:.0?}",
        if status.success() { "passed" } else { "FAILED" },
        start.elapsed()
    );
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
