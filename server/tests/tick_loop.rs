//! The tick loop driven tick by tick, without sockets or clocks: joins, snapshot
//! delivery into bounded queues, skipped ticks for a full queue, and the
//! slow-consumer close.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use ticksync_protocol::messages::close;
use ticksync_protocol::{
    ClientWorld, Input, InputSeq, MoveDir, PlayerId, ResumeToken, ServerMsg, codec, step,
};
use ticksync_server::Config;
use ticksync_server::net::outbound::{self, OutboundRx};
use ticksync_server::shared::{Closer, ConnId, Shared};
use ticksync_server::tick::{Command, TickLoop};

struct Rig {
    tick: TickLoop,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

fn rig(config: Config) -> Rig {
    let (tx, rx) = mpsc::channel(1024);
    let shared = Arc::new(Shared::new(config, tx.clone()));
    Rig {
        tick: TickLoop::new(shared.clone(), rx),
        commands: tx,
        shared,
    }
}

struct TestClient {
    id: PlayerId,
    conn: ConnId,
    rx: OutboundRx,
    closer: Closer,
}

fn join(rig: &mut Rig, conn: u64, queue: usize) -> TestClient {
    let (out, rx) = outbound::channel(queue);
    let (reply, mut reply_rx) = oneshot::channel();
    let closer = Closer::default();
    rig.commands
        .try_send(Command::Join {
            conn: ConnId(conn),
            name: None,
            resume: None,
            token: ResumeToken([conn as u8; 16]),
            out,
            closer: closer.clone(),
            reply,
        })
        .unwrap();
    rig.tick.step();
    let id = reply_rx.try_recv().unwrap().expect("joined");
    TestClient {
        id,
        conn: ConnId(conn),
        rx,
        closer,
    }
}

fn drain(c: &mut TestClient, world: &mut ClientWorld) -> Vec<InputSeq> {
    let mut acks = Vec::new();
    while let Some(frame) = c.rx.try_recv() {
        match codec::decode_server(&frame).unwrap() {
            ServerMsg::Snapshot(s) => {
                world.apply(&s.body).expect("every snapshot applies");
                acks.push(s.ack_input);
            }
            ServerMsg::Welcome(w) => assert_eq!(w.player_id, c.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    acks
}

#[test]
fn a_reading_client_gets_one_snapshot_per_tick_and_inputs_apply() {
    let mut rig = rig(Config::for_tests());
    let mut c = join(&mut rig, 1, 8);
    let mut world = ClientWorld::new();
    assert_eq!(drain(&mut c, &mut world).len(), 1);
    let start = world.get(c.id).unwrap();
    rig.commands
        .try_send(Command::Input {
            player: c.id,
            conn: c.conn,
            input: Input {
                ack_tick: None,
                first_seq: InputSeq(1),
                dirs: vec![MoveDir::new(127, 0), MoveDir::new(0, 127)],
            },
        })
        .unwrap();
    for _ in 0..3 {
        rig.tick.step();
        assert_eq!(drain(&mut c, &mut world).len(), 1);
    }
    let m = rig.shared.config.movement();
    let expect = step(
        step(start, MoveDir::new(127, 0), &m),
        MoveDir::new(0, 127),
        &m,
    );
    assert_eq!(world.get(c.id), Some(expect));
}

#[test]
fn a_client_that_never_reads_is_skipped_then_closed_without_disturbing_others() {
    let mut rig = rig(Config {
        stall_timeout: Duration::from_millis(500), // 15 ticks at 30 Hz
        ..Config::for_tests()
    });
    let mut good = join(&mut rig, 1, 4);
    let slow = join(&mut rig, 2, 4);
    let mut world = ClientWorld::new();
    drain(&mut good, &mut world);
    for t in 0..20 {
        rig.tick.step();
        assert_eq!(
            drain(&mut good, &mut world).len(),
            1,
            "the good client gets every tick (tick {t})"
        );
        let closed = slow.closer.cause();
        if t < 16 {
            assert!(closed.is_none(), "closed too early at {t}");
        }
    }
    let cause = slow.closer.cause().expect("slow consumer closed");
    assert_eq!(cause.code, close::SLOW_CONSUMER);
    assert!(rig.shared.metrics.snapshots_skipped.get() >= 15);
    // The slow client's queue holds deltas it can still apply in order.
    let mut slow = slow;
    let mut slow_world = ClientWorld::new();
    drain(&mut slow, &mut slow_world);
    assert!(slow_world.tick().is_some());
}

#[test]
fn a_skipping_client_resumes_with_a_delta_against_what_it_holds() {
    let mut rig = rig(Config::for_tests());
    let mut c = join(&mut rig, 1, 2);
    let mut world = ClientWorld::new();
    for _ in 0..5 {
        rig.tick.step(); // queue fills after two frames; the rest are skipped
    }
    assert!(rig.shared.metrics.snapshots_skipped.get() >= 3);
    drain(&mut c, &mut world);
    let held = world.tick().unwrap();
    rig.tick.step();
    let frame = c.rx.try_recv().unwrap();
    let ServerMsg::Snapshot(s) = codec::decode_server(&frame).unwrap() else {
        panic!("snapshot expected")
    };
    assert_eq!(s.body.baseline, Some(held));
    world.apply(&s.body).unwrap();
}
