//! End to end: misbehaving clients are disconnected with the documented close
//! codes (garbage 1002, text 1003, oversize 1009, an input flood 1008) while the
//! honest bots next to them keep receiving a snapshot every tick, never desync,
//! and still hold exactly the server's world.

mod common;

use std::time::Duration;

use ticksync_protocol::messages::close;
use ticksync_protocol::{ClientMsg, ErrorCode, InputSeq, MAX_INPUTS_PER_MSG, MoveDir, codec};
use ticksync_server::Config;
use ticksync_server::metrics::{DisconnectReason, InputRejection};

use common::raw::{Ended, RawClient, input_msg};

/// What the server does with an input flood: the token bucket drops messages
/// over `--input-rate-limit` (burst `--input-burst`), and `--flood-drops` drops
/// within `--flood-window` close the connection with an `Error` RateLimited and
/// 1008 (server/src/net/limits.rs).
const FLOOD_CLOSE: u16 = close::POLICY_VIOLATION;
const FLOOD_ERROR: ErrorCode = ErrorCode::RateLimited;

/// Input messages the flooder sends back to back: far beyond burst + flood drops
/// of the default config (60 + 100), and sent in a few milliseconds.
const FLOOD_MESSAGES: u32 = 400;

/// Joins, sends `bytes` as one binary frame, and returns how the server ended
/// the connection and the `Error` it sent first.
async fn send_and_close(addr: std::net::SocketAddr, bytes: Vec<u8>) -> (Ended, Option<ErrorCode>) {
    let (mut c, _) = RawClient::join(addr, "garbage").await;
    c.send_raw(bytes).await;
    let (end, error) = c.until_closed().await;
    (end, error.map(|e| e.code))
}

async fn text_frame(addr: std::net::SocketAddr) -> (Ended, Option<ErrorCode>) {
    let (mut c, _) = RawClient::join(addr, "texter").await;
    c.send_text("{\"hello\": \"world\"}").await;
    let (end, error) = c.until_closed().await;
    (end, error.map(|e| e.code))
}

/// Floods inputs with increasing sequence numbers, then reads until closed.
async fn flood(addr: std::net::SocketAddr) -> (Ended, Option<ErrorCode>, u32) {
    let (mut c, _) = RawClient::join(addr, "flooder").await;
    let dirs = [MoveDir::new(127, 127); MAX_INPUTS_PER_MSG];
    let mut sent = 0;
    for i in 0..FLOOD_MESSAGES {
        let first = InputSeq(1 + i * MAX_INPUTS_PER_MSG as u32);
        let bytes = codec::encode_client(&input_msg(first, &dirs));
        if c.try_send_raw(bytes).await.is_err() {
            break; // the server is gone: as good as a close for the sender
        }
        sent += 1;
    }
    let (end, error) = c.until_closed().await;
    (end, error.map(|e| e.code), sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_clients_are_closed_and_others_play_on() {
    let config = Config::for_tests();
    let max = config.max_message_size;
    let server = common::start_server(config).await;
    let addr = server.local_addr();
    let bots = common::connect_bots(&server, 1, 6).await;
    let ids = common::player_ids(&bots);
    common::wait_all(&bots, "the bots to see each other", |v| {
        common::sees_all(v, &ids)
    })
    .await;
    let before = common::views(&bots).await;

    let unknown_tag = vec![0x2a, 1, 2, 3];
    let mut truncated = codec::encode_client(&input_msg(InputSeq(1), &[MoveDir::new(1, 1); 3]));
    truncated.pop();
    let ping = codec::encode_client(&ClientMsg::Ping { client_time_us: 7 });
    let trailing = [ping.as_slice(), &[0]].concat();
    let (unknown, truncated, trailing, text, oversize, flooded) =
        common::within(common::WAIT, "the misbehaving clients", async {
            tokio::join!(
                send_and_close(addr, unknown_tag),
                send_and_close(addr, truncated),
                send_and_close(addr, trailing),
                text_frame(addr),
                send_and_close(addr, vec![0; max + 1]),
                flood(addr),
            )
        })
        .await;
    let malformed = (
        Ended::Closed(Some(close::PROTOCOL_ERROR)),
        Some(ErrorCode::Malformed),
    );
    assert_eq!(unknown, malformed, "unknown message tag");
    assert_eq!(truncated, malformed, "truncated Input");
    assert_eq!(trailing, malformed, "trailing byte after a Ping");
    assert_eq!(
        text.0,
        Ended::Closed(Some(close::UNSUPPORTED_DATA)),
        "text frame"
    );
    assert_eq!(
        oversize.0,
        Ended::Closed(Some(close::MESSAGE_TOO_BIG)),
        "oversize"
    );
    let (flood_end, flood_error, sent) = flooded;
    assert_eq!(
        flood_end,
        Ended::Closed(Some(FLOOD_CLOSE)),
        "flood ({sent} sent)"
    );
    assert_eq!(flood_error, Some(FLOOD_ERROR), "flood");

    // A session counts its disconnect once its tasks are done, a moment after
    // the close frame.
    let m = server.metrics();
    let counted = [
        (DisconnectReason::protocol_error, 3),
        (DisconnectReason::text_frame, 1),
        (DisconnectReason::too_big, 1),
        (DisconnectReason::rate_limited, 1),
    ];
    common::eventually(common::WAIT, "the disconnects to be counted", || async {
        counted.iter().all(|&(r, n)| m.disconnects(r) >= n)
    })
    .await;
    for (reason, n) in counted {
        assert_eq!(m.disconnects(reason), n, "{reason:?}");
    }
    assert!(m.inputs_rejected(InputRejection::rate_limited) > 0);

    // The honest bots kept their snapshot rate: a snapshot for every tick while
    // all this went on. (The server skips a tick for a client only when that
    // client's queue is full; 10 % slack covers a test runtime that stalls.)
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = common::views(&bots).await;
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        let ticks = u64::from(b.tick.expect("tick").0 - a.tick.expect("tick").0);
        let received = b.counters.snapshots - a.counters.snapshots;
        eprintln!("bot #{i}: {received} snapshots over {ticks} ticks");
        assert!(ticks >= 5, "bot #{i}'s world advanced only {ticks} ticks");
        assert!(
            received >= ticks - ticks / 10,
            "bot #{i}: {received} snapshots for {ticks} ticks"
        );
        assert_eq!(b.counters.desyncs, 0, "bot #{i}");
        assert!(b.connected, "bot #{i} still connected");
    }
    // And their worlds are still exactly the server's (the misbehavers' players
    // stand still for their resume grace).
    common::quiesce_and_compare(&server, &bots).await;
    for (i, outcome) in common::close_all(bots).await.iter().enumerate() {
        common::assert_clean_end(i, outcome);
    }
    common::shutdown(server).await;
}
