//! Unit tests of the session state machine: encoded server messages in, encoded
//! client messages and events out, time passed by hand.

use std::time::{Duration, Instant};

use ticksync_protocol::{
    ApplyError, ClientMsg, EntityState, FixedPos, Input, InputSeq, MoveConfig, PlayerId,
    ResumeToken, ServerMsg, SessionLimits, Snapshot, SnapshotBody, Tick, Welcome, codec, snapshot,
    step,
};

use super::{Event, Session, SessionOptions};

const ME: PlayerId = PlayerId(7);

fn cfg() -> MoveConfig {
    MoveConfig::from_units(100.0, 30, 1000.0)
}

fn welcome_bytes(resumed: bool, last_input_seq: u32) -> Vec<u8> {
    welcome_with(resumed, last_input_seq, limits())
}

fn welcome_with(resumed: bool, last_input_seq: u32, limits: SessionLimits) -> Vec<u8> {
    codec::encode_server(&ServerMsg::Welcome(Welcome {
        player_id: ME,
        tick: Tick(100),
        tick_rate: 30,
        movement: cfg(),
        fixed_scale: 16,
        view_radius: 0,
        resume_token: ResumeToken([9; 16]),
        resumed,
        last_input_seq: InputSeq(last_input_seq),
        limits,
    }))
}

/// A 30 Hz server's limits, but without a practical rate limit: these tests drain
/// messages without a clock (`drain`); the send budget has its own tests, with
/// `drain_at`.
fn limits() -> SessionLimits {
    SessionLimits {
        idle_timeout_ms: 15_000,
        rate_limit: u16::MAX,
        rate_burst: u16::MAX,
        resume_grace_ms: 10_000,
        input_queue: 16,
    }
}

fn snap_bytes(ack: u32, body: SnapshotBody) -> Vec<u8> {
    codec::encode_server(&ServerMsg::Snapshot(Snapshot {
        ack_input: InputSeq(ack),
        body,
    }))
}

/// An entity standing at (x, y): these tests move entities by corrections.
fn e(id: u32, x: i32, y: i32) -> EntityState {
    EntityState::at(PlayerId(id), FixedPos::new(x, y))
}

fn drain(s: &mut Session) -> Vec<ClientMsg> {
    drain_at(s, Instant::now())
}

fn drain_at(s: &mut Session, now: Instant) -> Vec<ClientMsg> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while s.poll_transmit(&mut buf, now) {
        out.push(codec::decode_client(&buf).expect("bot sends valid messages"));
    }
    out
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// The events other than snapshot intervals.
fn notable(s: &mut Session) -> Vec<Event> {
    let mut v = events(s);
    v.retain(|e| !matches!(e, Event::SnapshotInterval(_)));
    v
}

/// A session that has been welcomed and holds the full snapshot of tick 101 with
/// itself at (1000, 1000) and one other player.
fn playing(t0: Instant) -> (Session, Vec<EntityState>) {
    let opts = SessionOptions {
        seed: 1,
        ..SessionOptions::default()
    };
    let mut s = Session::new(opts, t0);
    assert!(matches!(drain(&mut s)[..], [ClientMsg::Hello(_)]));
    s.handle_bytes(&welcome_bytes(false, 0), t0).unwrap();
    let view = vec![e(3, 50, 60), e(ME.0, 1000, 1000)];
    s.handle_bytes(&snap_bytes(0, snapshot::full(Tick(101), &view)), t0)
        .unwrap();
    events(&mut s);
    (s, view)
}

#[test]
fn full_then_delta_snapshots_apply() {
    let t0 = Instant::now();
    let (mut s, base) = playing(t0);
    let cur = vec![e(3, 53, 60), e(ME.0, 1000, 1000), e(9, 1, 2)];
    let delta = snapshot::delta(Tick(102), Tick(101), &base, &cur, cfg().world_max);
    s.handle_bytes(&snap_bytes(0, delta), t0 + Duration::from_millis(33))
        .unwrap();
    assert_eq!(s.world().to_sorted_vec(), cur);
    assert_eq!(s.tick(), Some(Tick(102)));
    assert_eq!(s.counters().snapshots, 2);
    assert_eq!(s.counters().desyncs, 0);
    assert_eq!(
        events(&mut s),
        [Event::SnapshotInterval(Duration::from_millis(33))]
    );
}

#[test]
fn delta_against_missing_baseline_is_a_desync_and_asks_for_resync() {
    let t0 = Instant::now();
    let (mut s, base) = playing(t0);
    drain(&mut s);
    // The server thinks we hold tick 102; we hold 101.
    let cur = vec![e(3, 60, 60), e(ME.0, 1000, 1000)];
    s.handle_bytes(
        &snap_bytes(
            0,
            snapshot::delta(Tick(103), Tick(102), &base, &cur, cfg().world_max),
        ),
        t0,
    )
    .unwrap();
    assert_eq!(s.counters().desyncs, 1);
    assert!(matches!(
        notable(&mut s)[..],
        [Event::Desync(ApplyError::MissingBaseline {
            need: Tick(102),
            ..
        })]
    ));
    assert_eq!(drain(&mut s), [ClientMsg::Resync]);
    assert_eq!(s.tick(), None);
    // Deltas still in flight are skipped, not counted as more desyncs.
    s.handle_bytes(
        &snap_bytes(
            0,
            snapshot::delta(Tick(104), Tick(103), &cur, &cur, cfg().world_max),
        ),
        t0,
    )
    .unwrap();
    assert_eq!(s.counters().desyncs, 1);
    assert_eq!(s.counters().snapshots_skipped, 1);
    assert!(drain(&mut s).is_empty());
    // The full snapshot brings the world back.
    s.handle_bytes(&snap_bytes(0, snapshot::full(Tick(105), &cur)), t0)
        .unwrap();
    assert_eq!(s.tick(), Some(Tick(105)));
    assert_eq!(s.world().to_sorted_vec(), cur);
    assert_eq!(s.counters().desyncs, 1);
}

#[test]
fn a_first_snapshot_that_is_a_delta_is_a_desync() {
    let t0 = Instant::now();
    let mut s = Session::new(SessionOptions::default(), t0);
    drain(&mut s);
    s.handle_bytes(&welcome_bytes(false, 0), t0).unwrap();
    let v = vec![e(ME.0, 5, 5)];
    s.handle_bytes(
        &snap_bytes(
            0,
            snapshot::delta(Tick(2), Tick(1), &v, &v, cfg().world_max),
        ),
        t0,
    )
    .unwrap();
    assert_eq!(s.counters().desyncs, 1);
    assert!(drain(&mut s).contains(&ClientMsg::Resync));
}

#[test]
fn corrupted_checksum_is_a_desync() {
    let t0 = Instant::now();
    let (mut s, base) = playing(t0);
    drain(&mut s);
    let cur = vec![e(3, 70, 60), e(ME.0, 1000, 1000)];
    let mut delta = snapshot::delta(Tick(102), Tick(101), &base, &cur, cfg().world_max);
    delta.checksum.0 ^= 1;
    s.handle_bytes(&snap_bytes(0, delta), t0).unwrap();
    assert_eq!(s.counters().desyncs, 1);
    assert!(matches!(
        notable(&mut s)[..],
        [Event::Desync(ApplyError::ChecksumMismatch { .. })]
    ));
    assert_eq!(drain(&mut s), [ClientMsg::Resync]);
}

#[test]
fn unknown_message_types_are_skipped_and_bad_bytes_reported() {
    let t0 = Instant::now();
    let (mut s, _) = playing(t0);
    // Tag 9: a message type of some later version.
    s.handle_bytes(&[0x09, 0x01, 0x02], t0).unwrap();
    assert_eq!(s.counters().unknown_messages, 1);
    // A truncated snapshot: the shell closes with 1002 on this error.
    assert!(s.handle_bytes(&[0x01, 0x00], t0).is_err());
    assert_eq!(s.counters().decode_errors, 1);
    assert_eq!(s.tick(), Some(Tick(101)));
}

#[test]
fn inputs_are_predicted_and_mispredictions_counted() {
    let t0 = Instant::now();
    let (mut s, base) = playing(t0);
    s.handle_timeout(t0); // first input (and the first ping)
    let sent = drain(&mut s);
    let input = sent
        .iter()
        .find_map(|m| match m {
            ClientMsg::Input(i) => Some(i.clone()),
            _ => None,
        })
        .expect("an input");
    assert_eq!(input.first_seq, InputSeq(1));
    assert_eq!(input.ack_tick, Some(Tick(101)));
    let dir = input.dirs[0];
    let start = FixedPos::new(1000, 1000);

    // The server applied it exactly: confirmed.
    let exact = vec![base[0], EntityState::at(ME, step(start, dir, &cfg()))];
    s.handle_bytes(
        &snap_bytes(
            1,
            snapshot::delta(Tick(102), Tick(101), &base, &exact, cfg().world_max),
        ),
        t0,
    )
    .unwrap();
    assert_eq!(s.counters().mispredictions, 0);
    assert_eq!(s.last_ack(), InputSeq(1));

    // Next the server puts us somewhere else: one misprediction.
    s.handle_timeout(t0 + Duration::from_millis(34));
    drain(&mut s);
    let moved = FixedPos(exact[1].pos.0 + glam::IVec2::new(5, 0));
    let off = vec![base[0], EntityState::at(ME, moved)];
    s.handle_bytes(
        &snap_bytes(
            2,
            snapshot::delta(Tick(103), Tick(102), &exact, &off, cfg().world_max),
        ),
        t0,
    )
    .unwrap();
    assert_eq!(s.counters().mispredictions, 1);
    assert!(
        events(&mut s)
            .iter()
            .any(|e| matches!(e, Event::Mispredicted { .. }))
    );
    assert_eq!(s.counters().desyncs, 0);
}

#[test]
fn no_reconcile_without_own_entity_or_after_a_failed_apply() {
    let t0 = Instant::now();
    let (mut s, base) = playing(t0);
    s.handle_timeout(t0);
    drain(&mut s);
    // Own entity teleported but the checksum is wrong: a desync, not a misprediction.
    let far = vec![base[0], e(ME.0, 1, 1)];
    let mut bad = snapshot::delta(Tick(102), Tick(101), &base, &far, cfg().world_max);
    bad.checksum.0 = bad.checksum.0.wrapping_add(1);
    s.handle_bytes(&snap_bytes(1, bad), t0).unwrap();
    assert_eq!((s.counters().desyncs, s.counters().mispredictions), (1, 0));
    // A full snapshot without our own entity: nothing to reconcile.
    s.handle_bytes(&snap_bytes(1, snapshot::full(Tick(103), &base[..1])), t0)
        .unwrap();
    assert_eq!(s.counters().mispredictions, 0);
}

#[test]
fn pong_produces_an_rtt_sample() {
    let t0 = Instant::now();
    let (mut s, _) = playing(t0);
    let t1 = t0 + Duration::from_millis(10);
    s.handle_timeout(t1);
    let ping_time = drain(&mut s)
        .iter()
        .find_map(|m| match m {
            ClientMsg::Ping { client_time_us } => Some(*client_time_us),
            _ => None,
        })
        .expect("a ping right after the welcome");
    assert_eq!(ping_time, 10_000);
    let pong = codec::encode_server(&ServerMsg::Pong {
        client_time_us: ping_time,
        server_tick: Tick(102),
    });
    s.handle_bytes(&pong, t1 + Duration::from_micros(1500))
        .unwrap();
    assert_eq!(events(&mut s), [Event::Rtt(Duration::from_micros(1500))]);
    // The next ping waits a ping interval.
    s.handle_timeout(t1 + Duration::from_millis(500));
    assert!(
        !drain(&mut s)
            .iter()
            .any(|m| matches!(m, ClientMsg::Ping { .. }))
    );
    s.handle_timeout(t1 + Duration::from_millis(1000));
    assert!(
        drain(&mut s)
            .iter()
            .any(|m| matches!(m, ClientMsg::Ping { .. }))
    );
}

fn inputs(msgs: &[ClientMsg]) -> Vec<Input> {
    msgs.iter()
        .filter_map(|m| match m {
            ClientMsg::Input(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn inputs_are_batched_per_send_with_consecutive_seqs() {
    let t0 = Instant::now();
    let (mut s, _) = playing(t0);
    // Sending at 15 Hz against a 30 Hz server: two inputs per message.
    let mut all = Vec::new();
    for i in 0..10u64 {
        s.handle_timeout(t0 + Duration::from_micros(i * 1_000_000 / 15));
        all.extend(inputs(&drain(&mut s)));
    }
    assert_eq!(all[0].dirs.len(), 1, "the first input goes out at once");
    assert!(all[1..].iter().all(|i| i.dirs.len() == 2), "{all:?}");
    let seqs: Vec<u32> = all
        .iter()
        .flat_map(|i| i.iter().map(|(q, _)| q.0))
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u32).collect::<Vec<_>>());
    assert_eq!(s.counters().inputs_sent, seqs.len() as u64);

    // A long gap: split at MAX_INPUTS_PER_MSG, older backlog skipped.
    s.handle_timeout(t0 + Duration::from_secs(3));
    let burst = inputs(&drain(&mut s));
    assert_eq!(
        burst.iter().map(|i| i.dirs.len()).collect::<Vec<_>>(),
        [8, 8]
    );
    assert_eq!(burst[0].first_seq.0, *seqs.last().unwrap() + 1);
    assert_eq!(burst[1].first_seq.0, burst[0].first_seq.0 + 8);
    assert!(s.counters().inputs_skipped > 0);
}

#[test]
fn timer_jitter_does_not_change_the_batch_sizes() {
    let t0 = Instant::now();
    for (rate_hz, per_msg) in [(30u64, 1usize), (15, 2), (10, 3)] {
        let (mut s, _) = playing(t0);
        let mut sizes = Vec::new();
        for i in 0..30u64 {
            // Up to 4 ms early or late around each send time.
            let jitter = (i % 3) as i64 * 4_000 - 4_000;
            let at = (i * 1_000_000 / rate_hz) as i64 + if i == 0 { 0 } else { jitter };
            s.handle_timeout(t0 + Duration::from_micros(at as u64));
            sizes.extend(inputs(&drain(&mut s)).iter().map(|i| i.dirs.len()));
        }
        assert!(
            sizes[1..].iter().all(|&n| n == per_msg),
            "{rate_hz} Hz: {sizes:?}"
        );
    }
}

#[test]
fn no_inputs_before_the_first_snapshot_or_while_quiesced() {
    let t0 = Instant::now();
    let mut s = Session::new(SessionOptions::default(), t0);
    drain(&mut s);
    s.handle_timeout(t0);
    assert!(inputs(&drain(&mut s)).is_empty());
    s.handle_bytes(&welcome_bytes(false, 0), t0).unwrap();
    s.handle_timeout(t0);
    assert!(inputs(&drain(&mut s)).is_empty());

    let (mut s, _) = playing(t0);
    s.set_quiesced(true);
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert!(inputs(&drain(&mut s)).is_empty());
    s.set_quiesced(false);
    s.handle_timeout(t0 + Duration::from_secs(2));
    // Resumes with one input, not a second's worth of catch-up.
    assert_eq!(inputs(&drain(&mut s))[0].dirs.len(), 1);
}

#[test]
fn reconnect_resumes_with_the_token_and_continues_the_sequence() {
    let t0 = Instant::now();
    let (mut s, base) = playing(t0);
    for i in 0..5u64 {
        s.handle_timeout(t0 + Duration::from_millis(i * 34));
    }
    drain(&mut s);
    assert_eq!(s.last_input_seq(), InputSeq(5));

    s.restart(true);
    let hello = drain(&mut s);
    let [ClientMsg::Hello(h)] = &hello[..] else {
        panic!("{hello:?}")
    };
    assert_eq!(h.resume_token, Some(ResumeToken([9; 16])));
    assert_eq!(s.tick(), None);

    // The server had processed up to seq 3; it resumes and sends a full snapshot.
    s.handle_bytes(&welcome_bytes(true, 3), t0).unwrap();
    assert!(matches!(
        events(&mut s)[..],
        [Event::Welcomed { resumed: true, .. }]
    ));
    s.handle_bytes(&snap_bytes(3, snapshot::full(Tick(200), &base)), t0)
        .unwrap();
    s.handle_timeout(t0 + Duration::from_secs(1));
    let next = inputs(&drain(&mut s));
    assert_eq!(next[0].first_seq, InputSeq(4));
    assert_eq!(s.counters().desyncs, 0);
    assert_eq!(s.counters().mispredictions, 0);

    // Without resume the token is not offered.
    s.restart(false);
    let [ClientMsg::Hello(h)] = &drain(&mut s)[..] else {
        panic!()
    };
    assert_eq!(h.resume_token, None);
}

#[test]
fn a_session_resumed_just_before_the_sequence_wrap_plays_across_it() {
    let t0 = Instant::now();
    let mut s = Session::new(SessionOptions::default(), t0);
    drain(&mut s);
    s.handle_bytes(&welcome_bytes(true, u32::MAX - 1), t0)
        .unwrap();
    let start = e(ME.0, 1000, 1000);
    s.handle_bytes(
        &snap_bytes(u32::MAX - 1, snapshot::full(Tick(200), &[start])),
        t0,
    )
    .unwrap();
    let mut sent = Vec::new();
    for i in 0..3u64 {
        s.handle_timeout(t0 + Duration::from_millis(i * 34));
        sent.extend(inputs(&drain(&mut s)));
    }
    let seqs: Vec<InputSeq> = sent.iter().flat_map(|i| i.iter().map(|(q, _)| q)).collect();
    assert_eq!(seqs, [InputSeq(u32::MAX), InputSeq(0), InputSeq(1)]);
    // The server applies all three: the prediction is confirmed across the wrap.
    let pos = sent
        .iter()
        .flat_map(|i| i.dirs.iter())
        .fold(start.pos, |p, d| step(p, *d, &cfg()));
    let now = [EntityState::at(ME, pos)];
    s.handle_bytes(
        &snap_bytes(
            1,
            snapshot::delta(Tick(201), Tick(200), &[start], &now, cfg().world_max),
        ),
        t0,
    )
    .unwrap();
    assert_eq!(s.last_ack(), InputSeq(1));
    assert_eq!(s.last_input_seq(), InputSeq(1));
    assert_eq!(s.counters().mispredictions, 0);
    assert_eq!(s.predictor().unwrap().unacknowledged().len(), 0);
}

#[test]
fn an_unusable_welcome_is_reported_and_not_played() {
    let t0 = Instant::now();
    for (tick_rate, fixed_scale, field) in [(0, 16, "tick_rate"), (30, 10, "fixed_scale")] {
        let mut s = Session::new(SessionOptions::default(), t0);
        drain(&mut s);
        let bytes = codec::encode_server(&ServerMsg::Welcome(Welcome {
            player_id: ME,
            tick: Tick(100),
            tick_rate,
            movement: cfg(),
            fixed_scale,
            view_radius: 0,
            resume_token: ResumeToken([9; 16]),
            resumed: false,
            last_input_seq: InputSeq(0),
            limits: limits(),
        }));
        s.handle_bytes(&bytes, t0).unwrap();
        let events = notable(&mut s);
        assert!(
            matches!(&events[..], [Event::Incompatible(why)] if why.contains(field)),
            "{events:?}"
        );
        assert_eq!(s.player_id(), None);
        s.restart(true);
        let [ClientMsg::Hello(h)] = &drain(&mut s)[..] else {
            panic!()
        };
        assert_eq!(h.resume_token, None, "nothing to resume");
    }
}

#[test]
fn a_counting_session_reads_snapshot_heads_only_and_plays_on() {
    let t0 = Instant::now();
    let opts = SessionOptions {
        verify: false,
        ..SessionOptions::default()
    };
    let mut s = Session::new(opts, t0);
    drain(&mut s);
    s.handle_bytes(&welcome_bytes(false, 0), t0).unwrap();
    // A body that would not apply: a counting session never looks at it.
    let mut bad = snapshot::full(Tick(101), &[e(ME.0, 1000, 1000)]);
    bad.checksum.0 ^= 1;
    s.handle_bytes(&snap_bytes(0, bad), t0).unwrap();
    assert!(!s.verifies());
    assert_eq!((s.counters().snapshots, s.counters().desyncs), (1, 0));
    assert_eq!(s.tick(), Some(Tick(101)));
    assert!(s.world().is_empty() && s.predictor().is_none());
    // It plays: inputs numbered from the snapshot's ack, acknowledging its tick.
    s.handle_timeout(t0);
    let input = drain(&mut s)
        .into_iter()
        .find_map(|m| match m {
            ClientMsg::Input(i) => Some(i),
            _ => None,
        })
        .expect("an input");
    assert_eq!(
        (input.first_seq, input.ack_tick),
        (InputSeq(1), Some(Tick(101)))
    );
    let next = SnapshotBody {
        tick: Tick(102),
        baseline: Some(Tick(101)),
        ..SnapshotBody::default()
    };
    s.handle_bytes(&snap_bytes(1, next), t0 + Duration::from_millis(33))
        .unwrap();
    assert_eq!(
        (s.last_ack(), s.last_input_seq()),
        (InputSeq(1), InputSeq(1))
    );
    assert_eq!(s.counters().snapshots, 2);
    assert_eq!(
        s.counters().one_tick_deltas,
        0,
        "listing is counted by verifying bots"
    );
    // Other messages are still decoded.
    s.handle_bytes(&[0x09, 0x01], t0).unwrap();
    assert_eq!(s.counters().unknown_messages, 1);
}

#[test]
fn verifying_sessions_count_what_one_tick_deltas_list() {
    let t0 = Instant::now();
    let (mut s, base) = playing(t0);
    // 3 turns (a velocity change); we are corrected.
    let cur = vec![
        EntityState::new(PlayerId(3), FixedPos::new(50, 60), glam::IVec2::new(53, 0)),
        e(ME.0, 1001, 1000),
    ];
    let d = snapshot::delta(Tick(102), Tick(101), &base, &cur, cfg().world_max);
    s.handle_bytes(&snap_bytes(0, d), t0).unwrap();
    let c = s.counters();
    assert_eq!((c.one_tick_deltas, c.entities_in_one_tick_deltas), (1, 2));
    assert_eq!((c.changed_entries, c.corrected_entries), (1, 2));
}

#[test]
fn pings_at_least_every_third_of_the_idle_timeout() {
    let t0 = Instant::now();
    let opts = SessionOptions {
        ping_interval: Duration::from_secs(60),
        ..SessionOptions::default()
    };
    let mut s = Session::new(opts, t0);
    drain(&mut s);
    let welcome = ServerMsg::Welcome(Welcome {
        player_id: ME,
        tick: Tick(100),
        tick_rate: 30,
        movement: cfg(),
        fixed_scale: 16,
        view_radius: 0,
        resume_token: ResumeToken([9; 16]),
        resumed: false,
        last_input_seq: InputSeq(0),
        limits: SessionLimits {
            idle_timeout_ms: 1_500,
            ..limits()
        },
    });
    s.handle_bytes(&codec::encode_server(&welcome), t0).unwrap();
    let mut pings = 0;
    for ms in (0..=2_000u64).step_by(100) {
        s.handle_timeout(t0 + Duration::from_millis(ms));
        pings += drain(&mut s)
            .iter()
            .filter(|m| matches!(m, ClientMsg::Ping { .. }))
            .count();
    }
    // At 0, 500, 1000, 1500 and 2000 ms, not once a minute.
    assert_eq!(pings, 5);
}

/// A session welcomed at `t0` with `limits` (a 30 Hz server), playing from its
/// first snapshot.
fn playing_with(t0: Instant, limits: SessionLimits) -> Session {
    let mut s = Session::new(SessionOptions::default(), t0);
    drain_at(&mut s, t0);
    s.handle_bytes(&welcome_with(false, 0, limits), t0).unwrap();
    let view = vec![e(ME.0, 1000, 1000)];
    s.handle_bytes(&snap_bytes(0, snapshot::full(Tick(101), &view)), t0)
        .unwrap();
    s
}

#[test]
fn never_sends_faster_than_the_rate_limit_nor_more_than_the_burst() {
    let t0 = Instant::now();
    // One Input per tick at 30 Hz plus a Ping a second would be 31 messages a
    // second: a server announcing 10 a second (burst 4) gets fewer, fuller Inputs.
    let low = SessionLimits {
        rate_limit: 10,
        rate_burst: 4,
        ..limits()
    };
    let mut s = playing_with(t0, low);
    let mut sent: Vec<(u64, ClientMsg)> = Vec::new();
    for ms in (0..=5_000u64).step_by(5) {
        let now = t0 + Duration::from_millis(ms);
        s.handle_timeout(now);
        sent.extend(drain_at(&mut s, now).into_iter().map(|m| (ms, m)));
    }
    // The mirror leaves one message a second (and one of the burst) to the
    // WebSocket layer's pongs, and Hello took one: at most 3 + 9/s.
    for window in [1u64, 200, 1_000, 5_000] {
        for &(from, _) in &sent {
            let n = sent
                .iter()
                .filter(|(at, _)| (from..from + window).contains(at))
                .count() as u64;
            assert!(
                n * 1_000 <= 3 * 1_000 + 9 * window,
                "{n} messages within {window} ms from {from} ms"
            );
        }
    }
    // No direction is lost to the budget: consecutive, in fuller messages.
    let msgs: Vec<ClientMsg> = sent.into_iter().map(|(_, m)| m).collect();
    let all = inputs(&msgs);
    for pair in all.windows(2) {
        assert_eq!(
            pair[1].first_seq,
            pair[0].first_seq.plus(pair[0].dirs.len() as u32)
        );
    }
    let dirs: usize = all.iter().map(|i| i.dirs.len()).sum();
    assert!(dirs >= 145, "{dirs} directions in 5 s at 30 Hz");
    assert!(all.iter().any(|i| i.dirs.len() >= 3), "{all:?}");
    assert!(msgs.iter().any(|m| matches!(m, ClientMsg::Ping { .. })));
    assert_eq!(s.counters().inputs_skipped, 0);

    // Within a 30 Hz server's real limits (68/s, burst 68) nothing waits.
    let real = SessionLimits {
        rate_limit: 68,
        rate_burst: 68,
        ..limits()
    };
    let mut s = playing_with(t0, real);
    let mut all = Vec::new();
    for i in 0..60u64 {
        let now = t0 + Duration::from_micros(i * 1_000_000 / 30);
        s.handle_timeout(now);
        all.extend(inputs(&drain_at(&mut s, now)));
    }
    assert_eq!(all.len(), 60);
    assert!(all.iter().all(|i| i.dirs.len() == 1), "one Input per tick");
}

#[test]
fn a_catch_up_sends_at_most_input_queue_directions() {
    let t0 = Instant::now();
    for (input_queue, most) in [(16u16, 16usize), (64, 16), (3, 3)] {
        let q = SessionLimits {
            input_queue,
            ..limits()
        };
        let mut s = playing_with(t0, q);
        s.handle_timeout(t0);
        drain_at(&mut s, t0);
        // A 3-second stall: 90 ticks due.
        let later = t0 + Duration::from_secs(3);
        s.handle_timeout(later);
        let burst = inputs(&drain_at(&mut s, later));
        let dirs: usize = burst.iter().map(|i| i.dirs.len()).sum();
        assert_eq!(dirs, most, "input_queue {input_queue}");
        assert!(s.counters().inputs_skipped > 0);
    }
}

#[test]
fn no_resume_once_the_resume_grace_is_over() {
    let t0 = Instant::now();
    let (mut s, _) = playing(t0);
    let last = t0 + Duration::from_secs(1);
    let pong = codec::encode_server(&ServerMsg::Pong {
        client_time_us: 0,
        server_tick: Tick(102),
    });
    s.handle_bytes(&pong, last).unwrap();
    // The connection drops; the grace (10 s) counts from the last message.
    s.restart(true);
    assert!(s.resumable(last + Duration::from_millis(9_999)));
    let [ClientMsg::Hello(h)] = &drain(&mut s)[..] else {
        panic!("a Hello first");
    };
    assert!(h.resume_token.is_some(), "within the grace: a resume");
    // That attempt fails too; now the grace is over.
    s.restart(true);
    assert!(!s.resumable(last + Duration::from_secs(10)));
    assert_eq!(s.resume_token(), None);
    let [ClientMsg::Hello(h)] = &drain(&mut s)[..] else {
        panic!("a Hello first");
    };
    assert_eq!(h.resume_token, None, "a fresh Hello, not a doomed resume");
    // A new session's Welcome starts a new grace.
    s.handle_bytes(&welcome_bytes(false, 0), last + Duration::from_secs(11))
        .unwrap();
    assert!(s.resumable(last + Duration::from_secs(30)), "not lost");
}
