//! Garbage, messages at the wrong time, and floods.

use std::time::Duration;

use ticksync_protocol::messages::close;
use ticksync_protocol::{
    ClientMsg, ErrorCode, ErrorMsg, InputSeq, MoveDir, PROTOCOL_VERSION, ServerMsg,
};
use ticksync_server::Config;
use ticksync_server::metrics::{DisconnectReason, InputRejection};

use super::common::attack::{self, Witnesses};
use super::common::raw::{Ended, RawClient, input_msg};
use super::common::{WAIT, eventually, within};
use super::{assert_up, disconnects, hello, start, stop};

/// Asserts how a connection ended: the close code, the `Error` code before
/// it, and that the `Error` text is a sentence naming `names`.
fn assert_ending(
    what: &str,
    (end, err): (Ended, Option<ErrorMsg>),
    close_code: u16,
    code: ErrorCode,
    names: &str,
) {
    assert_eq!(end, Ended::Closed(Some(close_code)), "{what}");
    let err = err.unwrap_or_else(|| panic!("{what}: no Error before the close"));
    assert_eq!(err.code, code, "{what}: {err:?}");
    assert!(err.message.contains(names), "{what}: {:?}", err.message);
    assert!(
        !err.message.contains('{') && !err.message.contains("::"),
        "{what}: not a Rust debug dump: {:?}",
        err.message
    );
}

#[tokio::test]
async fn garbage_gets_the_documented_error_and_close_code() {
    let server = start(Config::for_tests()).await;
    let addr = server.local_addr();
    let w = Witnesses::start(&server, 3).await;
    let mark = w.mark().await;

    // Oversize binary message -> Error Malformed, 1009 (before and after Welcome).
    let mut c = RawClient::connect(addr).await;
    let _ = c.try_send_raw(vec![0u8; 4096]).await;
    let end = c.until_closed().await;
    assert_ending(
        "oversize",
        end,
        close::MESSAGE_TOO_BIG,
        ErrorCode::Malformed,
        "1024 bytes",
    );
    let (mut c, _) = RawClient::join(addr, "big").await;
    let _ = c.try_send_raw(vec![1u8; 2000]).await;
    let end = c.until_closed().await;
    assert_ending(
        "oversize after Welcome",
        end,
        close::MESSAGE_TOO_BIG,
        ErrorCode::Malformed,
        "2000",
    );
    // Text frame -> Error Malformed, 1003.
    let mut c = RawClient::connect(addr).await;
    c.send_text("hello?").await;
    let end = c.until_closed().await;
    assert_ending(
        "text",
        end,
        close::UNSUPPORTED_DATA,
        ErrorCode::Malformed,
        "binary",
    );
    // Undecodable bytes -> Error Malformed, 1002.
    for junk in [vec![0xff, 0xff, 0xff], vec![1], vec![9, 9, 9, 9], vec![]] {
        let mut c = RawClient::connect(addr).await;
        c.send_raw(junk.clone()).await;
        let end = c.until_closed().await;
        assert_ending(
            &format!("{junk:?}"),
            end,
            close::PROTOCOL_ERROR,
            ErrorCode::Malformed,
            "",
        );
    }
    // Input before Hello, and a second Hello -> Error UnexpectedMessage, 1002.
    let mut c = RawClient::connect(addr).await;
    c.send_input(InputSeq(1), &[MoveDir::new(1, 0)]).await;
    let end = c.until_closed().await;
    assert_ending(
        "Input first",
        end,
        close::PROTOCOL_ERROR,
        ErrorCode::UnexpectedMessage,
        "Input",
    );
    let (mut c, _) = RawClient::join(addr, "twice").await;
    c.send(&hello(None, None)).await;
    let end = c.until_closed().await;
    assert_ending(
        "second Hello",
        end,
        close::PROTOCOL_ERROR,
        ErrorCode::UnexpectedMessage,
        "once",
    );
    // A Hello of another version that does not decode: before Welcome its
    // version is all the server needs (VersionMismatch); after Welcome it is
    // undecodable like any other message (Malformed), not "unexpected".
    let foreign = vec![0, PROTOCOL_VERSION as u8 + 1, 0xff, 0xff];
    let mut c = RawClient::connect(addr).await;
    c.send_raw(foreign.clone()).await;
    let end = c.until_closed().await;
    assert_ending(
        "foreign Hello",
        end,
        close::POLICY_VIOLATION,
        ErrorCode::VersionMismatch,
        "Hello.version",
    );
    let (mut c, _) = RawClient::join(addr, "foreign").await;
    c.send_raw(foreign).await;
    let end = c.until_closed().await;
    assert_ending(
        "foreign Hello after Welcome",
        end,
        close::PROTOCOL_ERROR,
        ErrorCode::Malformed,
        "",
    );
    // Garbage after a good join -> 1002 as well.
    let (mut c, _) = RawClient::join(addr, "junk").await;
    c.send_raw(vec![7, 7, 7]).await;
    let end = c.until_closed().await;
    assert_ending(
        "junk after Welcome",
        end,
        close::PROTOCOL_ERROR,
        ErrorCode::Malformed,
        "",
    );
    // Not HTTP at all -> 400, no upgrade.
    let (status, _) = attack::http_get(addr, "\u{1}\u{2} nonsense").await;
    assert_eq!(status, 400);

    let m = server.metrics();
    assert_eq!(m.disconnects(DisconnectReason::too_big), 2);
    assert_eq!(m.disconnects(DisconnectReason::text_frame), 1);
    disconnects(&server, DisconnectReason::protocol_error, 8).await;
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}

#[tokio::test]
async fn input_flood_is_dropped_and_counted_then_closed_with_1008() {
    let server = start(Config {
        input_rate_limit: Some(40),
        input_burst: Some(20),
        flood_drops: 60,
        flood_window: Duration::from_secs(2),
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    let w = Witnesses::start(&server, 3).await;
    let mark = w.mark().await;

    // A short burst over the bucket: the excess is dropped, the client stays.
    let (mut burst, _) = RawClient::join(addr, "bursty").await;
    for seq in 1..=30 {
        burst
            .send(&input_msg(InputSeq(seq), &[MoveDir::new(0, 1)]))
            .await;
    }
    eventually(WAIT, "dropped inputs counted", || async {
        server
            .metrics()
            .inputs_rejected(InputRejection::rate_limited)
            >= 5
    })
    .await;

    // A sustained flood: dropped, then Error RateLimited and close 1008.
    let (mut flood, _) = RawClient::join(addr, "flooder").await;
    let sender = tokio::spawn(async move {
        for seq in 1..=5_000u32 {
            let msg = input_msg(InputSeq(seq), &[MoveDir::new(1, 0); 4]);
            if flood
                .try_send_raw(ticksync_protocol::codec::encode_client(&msg))
                .await
                .is_err()
            {
                break;
            }
        }
        flood
    });
    let mut flood = within(WAIT, "the flood to end", sender)
        .await
        .expect("flood task");
    let (end, err) = flood.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::POLICY_VIOLATION)));
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::RateLimited));
    disconnects(&server, DisconnectReason::rate_limited, 1).await;

    // The bursty client was never closed: it still gets snapshots.
    burst.snapshot().await;
    let m = server.metrics();
    assert!(m.messages_rate_limited.get() >= 60);
    assert!(m.inputs_rejected(InputRejection::rate_limited) >= 60 * 4);
    assert_eq!(m.disconnects(DisconnectReason::rate_limited), 1);
    drop((burst, flood));
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}

/// What a compliant client has seen: the last `ack_input` and the `Pong`s.
#[derive(Default)]
struct Seen {
    ack: InputSeq,
    pongs: u32,
}

impl Seen {
    /// Takes one server message; true for a snapshot.
    fn take(&mut self, msg: Result<ServerMsg, Ended>) -> bool {
        match msg {
            Ok(ServerMsg::Snapshot(s)) => {
                self.ack = s.ack_input;
                true
            }
            Ok(ServerMsg::Pong { .. }) => {
                self.pongs += 1;
                false
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Section 11's compliant client: one `Input` per server tick (sent as each
/// snapshot arrives) and a `Ping` a second. The default rate limit follows the
/// tick rate, so at 60 and 120 Hz not one of its messages is dropped (a flat
/// 60 messages/s used to drop half of them at 120 Hz).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_input_per_tick_and_pings_are_never_rate_limited_at_60_and_120_hz() {
    for hz in [60u16, 120] {
        let server = start(Config {
            tick_rate: hz,
            ..Config::for_tests()
        })
        .await;
        let (mut c, _) = RawClient::join(server.local_addr(), "compliant").await;
        let ticks = u32::from(hz) * 3;
        let (mut seq, mut pings) = (0u32, 0u32);
        let mut seen = Seen::default();
        while seq < ticks {
            if seen.take(c.recv().await) {
                seq += 1;
                c.send_input(InputSeq(seq), &[MoveDir::new(1, 0)]).await;
                if seq % u32::from(hz) == 0 {
                    c.send(&ClientMsg::Ping {
                        client_time_us: u64::from(seq),
                    })
                    .await;
                    pings += 1;
                }
            }
        }
        // Hello, the inputs and the pings: all judged by the limiter by now.
        let sent = u64::from(1 + ticks + pings);
        eventually(WAIT, "every message received", || async {
            server.metrics().messages_received.get() >= sent
        })
        .await;
        let m = server.metrics();
        assert_eq!(m.messages_rate_limited.get(), 0, "{hz} Hz");
        assert_eq!(m.inputs_rejected(InputRejection::rate_limited), 0);
        within(WAIT, "every input applied and every ping answered", async {
            while InputSeq(seq).is_after(seen.ack) || seen.pongs < pings {
                seen.take(c.recv().await);
            }
        })
        .await;
        assert_eq!(c.close_normal().await, Ended::Closed(Some(close::NORMAL)));
        stop(server).await;
    }
}
