//! The `ticksync-server` binary: parses the config, sets up logging, runs the
//! server until Ctrl-C, SIGTERM or an operator's `POST /drain`, then drains
//! gracefully and exits; SIGHUP reloads the TLS
//! certificate meanwhile. `mint-token` prints a join token instead
//! (docs/OPERATIONS.md, "Join tokens"); `healthcheck` asks a running server's
//! `/healthz` (the container image's HEALTHCHECK, which has no curl).

use std::io::{IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use ticksync_server::auth::{self, AuthSecret};
use ticksync_server::{Config, Server};

/// Ticksync: an authoritative fixed-tick game state-sync server. Without a
/// subcommand it runs the server.
#[derive(Debug, Parser)]
#[command(name = "ticksync-server", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print a signed join token for a player (for tests and tools; production
    /// tokens come from the deployment's own auth service with the same secret).
    MintToken {
        /// The server's --auth-secret.
        #[arg(long, env = "TICKSYNC_AUTH_SECRET", hide_env_values = true)]
        secret: AuthSecret,
        /// The player's identity, 1 to 32 bytes.
        #[arg(long)]
        name: String,
        /// How long the token is valid.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Exit 0 when the server on this machine's --bind port answers
    /// `GET /healthz` with 200, 1 otherwise (draining, stalled, not up). For
    /// a container HEALTHCHECK in an image without curl. With --tls-cert it
    /// can only check that the port accepts connections.
    Healthcheck {
        /// Time limit for the whole check.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::MintToken { secret, name, ttl }) = cli.command {
        let expires = auth::unix_now().saturating_add(ttl.as_secs());
        return match auth::mint(&secret, &name, expires) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let config = cli.config;
    if let Some(Cmd::Healthcheck { timeout }) = cli.command {
        return healthcheck(&config, timeout);
    }
    init_tracing(config.log_json);
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    info!(
        ?config,
        input_rate_limit = config.input_rate_limit(),
        input_burst = config.input_burst(),
        "starting ticksync-server {}",
        env!("CARGO_PKG_VERSION")
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        let scheme = if server.tls().is_some() {
            "https"
        } else {
            "http"
        };
        // Registered before the start-up line: a SIGHUP sent once the server
        // says it listens must reload, not meet the default action (exit).
        let hangups = hangups();
        info!("listening on {scheme}://{}", server.local_addr());
        tokio::select! {
            _ = serve_until_shutdown(&server, hangups) => {}
            _ = server.drain_requested() => info!("drain requested on the admin API"),
        }
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// `GET /healthz` on the --bind port over loopback (the bind address when it
/// names one); prints the outcome.
fn healthcheck(config: &Config, timeout: Duration) -> ExitCode {
    let ip = match config.bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, config.bind.port());
    let tls = config.tls_cert.is_some();
    let outcome = TcpStream::connect_timeout(&addr, timeout).and_then(|mut stream| {
        if tls {
            return Ok(format!(
                "{addr} accepts connections (TLS: /healthz not read)"
            ));
        }
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer);
        let status = answer.lines().next().unwrap_or_default();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        if status.split(' ').nth(1) == Some("200") {
            Ok(body.trim().to_string())
        } else {
            Err(std::io::Error::other(format!("{status}: {}", body.trim())))
        }
    });
    match outcome {
        Ok(what) => {
            println!("healthy: {what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("unhealthy: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// SIGHUP as a stream (`None` where there are no such signals or it cannot be
/// registered: then TLS reloads only through `--tls-watch`).
#[cfg(unix)]
fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .map_err(
            |e| error!(error = %e, "cannot listen for SIGHUP: TLS reloads only via --tls-watch"),
        )
        .ok()
}

#[cfg(not(unix))]
fn hangups() -> Option<std::future::Pending<()>> {
    None
}

/// Waits for Ctrl-C or SIGTERM; every SIGHUP meanwhile reloads the TLS
/// certificate and key (a bad pair is logged and the current one kept).
#[cfg(unix)]
async fn serve_until_shutdown(server: &Server, hangups: Option<tokio::signal::unix::Signal>) {
    let shutdown = shutdown_requested(server);
    tokio::pin!(shutdown);
    let Some(mut hup) = hangups else {
        return shutdown.await;
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = hup.recv() => match server.tls() {
                // reload_counted logs the outcome either way.
                Some(tls) => { let _ = tls.reload_counted(server.metrics(), "SIGHUP"); }
                None => info!("SIGHUP: no TLS certificate configured, nothing to reload"),
            },
        }
    }
}

#[cfg(not(unix))]
async fn serve_until_shutdown(server: &Server, _hangups: Option<std::future::Pending<()>>) {
    shutdown_requested(server).await;
}

/// A signal, or the server itself asking for a drain (its Agones GameServer
/// was deleted).
async fn shutdown_requested(server: &Server) {
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = server.stop_requested() => info!("drain requested by Agones"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    info!("shutdown signal received");
}
