//! `ws-floor`: the transport floor for `benches/load.sh` (see the library docs).
//!
//! ```text
//! ws-floor server --bind 127.0.0.1:7990 --frame-bytes 170 --exit-after 90s
//! ws-floor client --addr 127.0.0.1:7990 --clients 2000 --duration 60s --frame-bytes 170
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ticksync_ws_floor::{ClientOpts, ServerOpts, run_clients, serve};

/// A bare tokio-tungstenite server and clients moving a load run's traffic.
#[derive(Debug, Parser)]
#[command(name = "ws-floor")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The server (multi-threaded runtime, one worker per core, as Ticksync's).
    Server {
        /// Address to listen on (loopback only in load runs).
        #[arg(long)]
        bind: SocketAddr,
        /// Messages per second to each client.
        #[arg(long, default_value_t = 30)]
        tick_rate: u32,
        /// Bytes of each tick message.
        #[arg(long, default_value_t = 170)]
        frame_bytes: usize,
        /// Bytes of the answer to a ping.
        #[arg(long, default_value_t = 12)]
        pong_bytes: usize,
        /// Stops by itself after this long.
        #[arg(long, value_parser = humantime::parse_duration)]
        exit_after: Duration,
    },
    /// The clients (one current-thread runtime, as the bots).
    Client {
        /// The server's address.
        #[arg(long)]
        addr: SocketAddr,
        /// Connections.
        #[arg(long)]
        clients: usize,
        /// Run time, ramp-up included.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Connections open evenly over this time.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        ramp_up: Duration,
        /// Input messages per second per client.
        #[arg(long, default_value_t = 30)]
        input_rate: u32,
        /// Bytes of an input message.
        #[arg(long, default_value_t = 9)]
        input_bytes: usize,
        /// Time between pings of one client.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        ping_interval: Duration,
        /// The server's tick message size (tells tick messages from pongs).
        #[arg(long, default_value_t = 170)]
        frame_bytes: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Server {
            bind,
            tick_rate,
            frame_bytes,
            pong_bytes,
            exit_after,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("binding {bind}"))?;
                let opts = ServerOpts {
                    tick_rate,
                    frame_bytes,
                    pong_bytes,
                    ..ServerOpts::default()
                };
                let _ = tokio::time::timeout(exit_after, serve(listener, opts)).await;
                Ok(())
            })
        }
        Cmd::Client {
            addr,
            clients,
            duration,
            ramp_up,
            input_rate,
            input_bytes,
            ping_interval,
            frame_bytes,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let opts = ClientOpts {
                addr,
                clients,
                duration,
                ramp_up,
                input_rate,
                input_bytes,
                ping_interval,
            };
            let s = rt.block_on(run_clients(opts, frame_bytes));
            let secs = duration.as_secs_f64().max(1e-9);
            println!(
                "ws-floor client: connected={} frames={} ({:.1}/s per client) pongs={} bytes={} sent={}",
                s.connected,
                s.frames,
                s.frames as f64 / secs / s.connected.max(1) as f64,
                s.pongs,
                s.bytes,
                s.sent
            );
            Ok(())
        }
    }
}
