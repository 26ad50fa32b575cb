//! Test support shared by `server/tests/` and the workspace's end-to-end tests
//! (`tests/`): the one raw WebSocket protocol client ([`raw`]), a raw HTTP
//! client ([`http`]), the bounded wait they use, and a stand-in of the Agones
//! SDK server ([`agones`]). Never published (`publish = false`): only tests depend on it.
//!
//! Every wait is bounded and fails the test with a message saying what did not
//! happen, so a lost message is a clear failure, never a hang.

pub mod agones;
pub mod http;
pub mod raw;

use std::future::Future;
use std::time::Duration;

/// Generous bound for anything a test waits for: the machine is shared and noisy,
/// so only a real failure (a hang, a lost message) should ever reach it.
pub const WAIT: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// `token` (`payload.signature`, base64url) with the first character of its
/// signature changed, so the server must refuse it as forged ("invalid
/// signature"). Not the last character: that one also carries base64's unused
/// low bits, so changing 'A' to 'B' there only changes padding bits and the
/// token is refused as malformed instead (1 token in 16).
pub fn forge_seat_token(token: &str) -> String {
    let dot = token.find('.').expect("a seat token is payload.signature") + 1;
    let first = &token[dot..=dot];
    let swapped = if first == "A" { "B" } else { "A" };
    format!("{}{swapped}{}", &token[..dot], &token[dot + 1..])
}
