//! End to end: client-side prediction against the real server. When the server
//! applies every input, the prediction is the authoritative position; an input
//! the server never applies (sent with a stale sequence number, or never sent)
//! shows up as exactly one correction, after which prediction and server agree
//! again: a correction, not drift.

mod common;

use glam::IVec2;
use ticksync_protocol::movement::velocity;
use ticksync_protocol::{InputSeq, Reconciliation};
use ticksync_server::Config;
use ticksync_server::metrics::InputRejection;

use common::raw::{Applied, RawPlayer};

fn corrections(applied: &[Applied]) -> Vec<IVec2> {
    applied
        .iter()
        .filter_map(|a| match a.reconciliation {
            Reconciliation::Corrected { error } => Some(error),
            Reconciliation::Confirmed => None,
        })
        .collect()
}

/// Predicts and sends `n` inputs the usual way (one message each), then reads
/// snapshots until the last is acknowledged; every snapshot must confirm the
/// prediction and the prediction must end on the authoritative position.
async fn play_exactly(p: &mut RawPlayer, n: usize) {
    let mut last = InputSeq(0);
    for _ in 0..n {
        let dir = p.towards_middle();
        let (seq, _) = p.predictor.push(dir);
        p.client.send_input(seq, &[dir]).await;
        last = seq;
    }
    let applied = p.until_acked(last).await;
    assert_eq!(
        corrections(&applied),
        [],
        "no correction while every input is applied"
    );
    assert_eq!(p.predictor.position(), p.authoritative());
    assert_eq!(p.predictor.unacknowledged().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_input_is_one_correction_not_drift() {
    let server = common::start_server(Config::for_tests()).await;
    let mut p = RawPlayer::join(server.local_addr(), "predictor").await;
    let cfg = p.welcome.movement;

    play_exactly(&mut p, 6).await;
    assert_eq!(p.predictor.mispredictions(), 0);

    // Stale: the client predicts input 7 but puts it on the wire as seq 6, which
    // the server already has and drops. Input 8 goes out normally.
    let stale_before = server.metrics().inputs_rejected(InputRejection::stale);
    let lost = p.towards_middle();
    let (seq7, _) = p.predictor.push(lost);
    p.client.send_input(InputSeq(seq7.0 - 1), &[lost]).await;
    let dir = p.towards_middle();
    let (seq8, _) = p.predictor.push(dir);
    p.client.send_input(seq8, &[dir]).await;
    let applied = p.until_acked(seq8).await;
    assert_eq!(
        corrections(&applied),
        [-velocity(lost, &cfg)],
        "one correction, by exactly the lost input's step"
    );
    assert_eq!(p.predictor.position(), p.authoritative(), "no drift");
    assert_eq!(
        server.metrics().inputs_rejected(InputRejection::stale),
        stale_before + 1
    );

    // Skipped: input 9 is predicted but never sent; 10 is.
    let lost = p.towards_middle();
    p.predictor.push(lost);
    let dir = p.towards_middle();
    let (seq10, _) = p.predictor.push(dir);
    p.client.send_input(seq10, &[dir]).await;
    let applied = p.until_acked(seq10).await;
    assert_eq!(corrections(&applied), [-velocity(lost, &cfg)]);
    assert_eq!(p.predictor.position(), p.authoritative(), "no drift");

    // Afterwards prediction is exact again, and the server agrees with the world
    // this client reconstructed.
    play_exactly(&mut p, 6).await;
    assert_eq!(p.predictor.mispredictions(), 2);
    let (_, world) = common::server_world(&server).await;
    let me = world
        .iter()
        .find(|e| e.id == p.id())
        .expect("on the server");
    assert_eq!(me.pos, p.authoritative());
    common::shutdown(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_predict_exactly_when_no_input_is_dropped() {
    let server = common::start_server(Config::for_tests()).await;
    let bots = common::connect_bots(&server, 100, 4).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let settled = common::quiesce_and_compare(&server, &bots).await;
    let m = server.metrics();
    let dropped = m.inputs_rejected(InputRejection::stale)
        + m.inputs_rejected(InputRejection::queue_full)
        + m.inputs_rejected(InputRejection::server_busy)
        + m.inputs_rejected(InputRejection::rate_limited);
    if dropped > 0 {
        eprintln!("warning: the server dropped {dropped} inputs (overloaded machine?)");
    }
    for (i, v) in settled.views.iter().enumerate() {
        assert!(v.counters.inputs_sent >= 20, "bot #{i} played: {v:?}");
        if dropped == 0 {
            assert_eq!(v.counters.mispredictions, 0, "bot #{i}");
        }
        // Whatever happened, the prediction ends on the server's position.
        assert_eq!(v.predicted_position, v.own_position, "bot #{i}");
    }
    common::close_all(bots).await;
    common::shutdown(server).await;
}

/// Sequence numbers wrap (docs/PROTOCOL.md section 11): a session that reaches
/// 2^32 − 1 goes on with 0, 1, 2, … with exact prediction, and a resume across
/// the wrap continues after the `last_input_seq` the server reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_numbers_wrap_and_a_resume_continues_across_the_wrap() {
    let server = common::start_server(Config::for_tests()).await;
    let addr = server.local_addr();
    let mut p = RawPlayer::join(addr, "wrap").await;
    play_exactly(&mut p, 2).await;

    // Skipping ahead is allowed (up to 2^31 − 1 at a time): two jumps bring the
    // session just before the wrap. The predictor adopts acks it never sent.
    for seq in [1 << 31, u32::MAX - 2] {
        let dir = p.towards_middle();
        p.client.send_input(InputSeq(seq), &[dir]).await;
        common::within(common::WAIT, "the jump to be applied", async {
            while p.last_ack != InputSeq(seq) {
                p.next_snapshot().await;
            }
        })
        .await;
    }
    assert_eq!(p.predictor.next_seq(), InputSeq(u32::MAX - 1));
    let stale_before = server.metrics().inputs_rejected(InputRejection::stale);

    // u32::MAX - 1, u32::MAX, 0, 1: applied in order, predicted exactly.
    play_exactly(&mut p, 4).await;
    assert_eq!(p.last_ack, InputSeq(1));
    let before_drop = p.authoritative();

    // The connection drops; the session resumes on a new one after input 1.
    let token = p.welcome.resume_token;
    drop(p);
    let mut p = RawPlayer::resume(addr, token).await;
    assert_eq!(p.welcome.last_input_seq, InputSeq(1));
    assert_eq!(p.authoritative(), before_drop);
    assert_eq!(p.predictor.next_seq(), InputSeq(2));
    play_exactly(&mut p, 3).await;
    assert_eq!(p.last_ack, InputSeq(4));
    assert_eq!(p.predictor.mispredictions(), 0);
    assert_eq!(
        server.metrics().inputs_rejected(InputRejection::stale),
        stale_before,
        "no input after the wrap was taken for an old one"
    );
    common::shutdown(server).await;
}
