//! Test support: an in-process server on 127.0.0.1:0. The raw WebSocket client
//! is the workspace's one ([`ticksync_testkit::raw`]), shared with `tests/`.

#![allow(dead_code)]

use std::time::Duration;

use ticksync_server::{Config, Server};
use ticksync_testkit::WAIT;

/// Waits (bounded by [`WAIT`]) until `cond` holds; panics otherwise.
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

pub async fn start_default() -> Server {
    start(Config::for_tests()).await
}
