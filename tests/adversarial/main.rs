//! Adversarial end-to-end tests: each one attacks a live server on 127.0.0.1 the
//! way the public internet would (garbage, floods, slowloris, connection storms,
//! clients that never read, forged join tokens, reconnect storms, shutdown under
//! load) and asserts the outcome documented in docs/PROTOCOL.md (section 12) and
//! docs/OPERATIONS.md (section 2), that the server stays up, and that
//! well-behaved bots playing beside the attackers ([`Witnesses`]) see 0 desyncs
//! and keep their snapshot rate.
//!
//! - [`bad_input`]: garbage, wrong messages, floods;
//! - [`connections`]: connection limits, slowloris and timeouts, a client that never reads;
//! - [`sessions`]: join tokens, a reconnect storm, graceful drain;
//! - [`tls`]: a few hundred bots over `wss://`, abuse of the TLS handshake.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod connections;
mod endings;
mod sessions;
mod tls;

use std::net::IpAddr;

use ticksync_protocol::{ClientMsg, Hello, PROTOCOL_VERSION};
use ticksync_server::metrics::DisconnectReason;
use ticksync_server::{Config, Server};

use common::attack;
#[cfg(doc)]
use common::attack::Witnesses;
use common::{WAIT, eventually, within};

/// The attackers' source address; witnesses connect from 127.0.0.1.
pub const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Starts a server.
pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

/// Asserts that the server still answers its health check.
pub async fn assert_up(server: &Server) {
    let (status, body) = attack::http_get(server.local_addr(), "/healthz").await;
    assert_eq!(status, 200, "healthz: {body}");
}

/// Shuts the server down (bounded).
pub async fn stop(server: Server) {
    within(WAIT, "the server to shut down", server.shutdown()).await;
}

/// Waits until a disconnect counter reaches `n`.
pub async fn disconnects(server: &Server, reason: DisconnectReason, n: u64) {
    eventually(WAIT, &format!("{n} disconnects {reason:?}"), || async {
        server.metrics().disconnects(reason) >= n
    })
    .await;
}

/// A `Hello` with a name and a join token.
pub fn hello(name: Option<&str>, token: Option<String>) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.map(Into::into),
        auth_token: token,
        resume_token: None,
    })
}
