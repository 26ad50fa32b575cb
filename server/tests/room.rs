//! One room driven tick by tick, without sockets, clocks or threads: joins,
//! snapshot delivery into bounded queues, skipped ticks for a full queue, the
//! slow-consumer close, kicks, commanded and idle closes, and seat accounting.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use ticksync_protocol::messages::close;
use ticksync_protocol::{
    ClientWorld, Input, InputSeq, MoveDir, PlayerId, ResumeToken, ServerMsg, codec, step,
};
use ticksync_server::metrics::RoomCloseReason;
use ticksync_server::net::outbound::{self, OutboundRx};
use ticksync_server::net::send::{SendBatch, Senders};
use ticksync_server::room::{
    Command, JoinReply, JoinRequest, Room, RoomEnv, RoomHandle, RoomId, Rooms, Stepped,
};
use ticksync_server::session::{Closer, ConnId};
use ticksync_server::{Config, Metrics};

struct Rig {
    batch: SendBatch,
    room: Room,
    handle: Arc<RoomHandle>,
    env: RoomEnv,
}

fn rig(config: Config) -> Rig {
    let kinds = config.kinds().expect("valid kinds");
    let env = RoomEnv {
        metrics: Arc::new(Metrics::new()),
        rooms: Arc::new(Rooms::new(10, 100)),
    };
    let (room, handle) = Room::new(RoomId(7), kinds.default_kind().clone(), env.clone());
    assert!(env.rooms.reserve_slot() && env.rooms.insert(handle.clone()));
    Rig {
        batch: Senders::inline().batch(),
        room,
        handle,
        env,
    }
}

impl Rig {
    /// One tick, then the tick thread's flush.
    fn step(&mut self) -> Stepped {
        let stepped = self.room.step(&mut self.batch);
        self.batch.flush();
        stepped
    }
}

struct TestClient {
    id: PlayerId,
    conn: ConnId,
    rx: OutboundRx,
    closer: Closer,
    token: ResumeToken,
}

fn request(
    conn: u64,
    queue: usize,
    resume: Option<ResumeToken>,
) -> (JoinRequest, OutboundRx, oneshot::Receiver<JoinReply>) {
    let (out, rx) = outbound::channel(queue);
    let (reply, reply_rx) = oneshot::channel();
    let req = JoinRequest {
        conn: ConnId(conn),
        name: None,
        resume,
        token: ResumeToken([conn as u8; 16]),
        seated: resume.is_none(),
        out,
        closer: Closer::default(),
        reply,
    };
    (req, rx, reply_rx)
}

fn join(rig: &mut Rig, conn: u64, queue: usize) -> TestClient {
    assert!(
        rig.env.rooms.pool.try_take(&rig.handle.seats),
        "a free seat"
    );
    let (req, rx, mut reply_rx) = request(conn, queue, None);
    let closer = req.closer.clone();
    let token = req.token;
    rig.handle.try_send(Command::Join(Box::new(req))).unwrap();
    rig.step();
    let id = reply_rx.try_recv().unwrap().expect("joined");
    TestClient {
        id,
        conn: ConnId(conn),
        rx,
        closer,
        token,
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
    let mut world = ClientWorld::new(rig.handle.kind.sim.movement.world_max);
    assert_eq!(drain(&mut c, &mut world).len(), 1);
    let start = world.get(c.id).unwrap();
    rig.handle
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
        rig.step();
        assert_eq!(drain(&mut c, &mut world).len(), 1);
    }
    let m = rig.handle.kind.sim.movement;
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
    let mut world = ClientWorld::new(rig.handle.kind.sim.movement.world_max);
    drain(&mut good, &mut world);
    for t in 0..20 {
        rig.step();
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
    assert!(rig.env.metrics.snapshots_skipped.get() >= 15);
    // The slow client's queue holds deltas it can still apply in order.
    let mut slow = slow;
    let mut slow_world = ClientWorld::new(rig.handle.kind.sim.movement.world_max);
    drain(&mut slow, &mut slow_world);
    assert!(slow_world.tick().is_some());
}

#[test]
fn a_skipping_client_resumes_with_a_delta_against_what_it_holds() {
    let mut rig = rig(Config::for_tests());
    let mut c = join(&mut rig, 1, 2);
    let mut world = ClientWorld::new(rig.handle.kind.sim.movement.world_max);
    for _ in 0..5 {
        rig.step(); // queue fills after two frames; the rest are skipped
    }
    assert!(rig.env.metrics.snapshots_skipped.get() >= 3);
    drain(&mut c, &mut world);
    let held = world.tick().unwrap();
    rig.step();
    let frame = c.rx.try_recv().unwrap();
    let ServerMsg::Snapshot(s) = codec::decode_server(&frame).unwrap() else {
        panic!("snapshot expected")
    };
    assert_eq!(s.body.baseline, Some(held));
    world.apply(&s.body).unwrap();
}

#[test]
fn seats_follow_players_in_and_out_of_the_world() {
    let mut rig = rig(Config {
        resume_grace: Duration::from_millis(100), // 3 ticks
        ..Config::for_tests()
    });
    let a = join(&mut rig, 1, 8);
    let b = join(&mut rig, 2, 8);
    assert_eq!(
        (rig.handle.seats.taken(), rig.env.rooms.pool.taken()),
        (2, 2)
    );
    assert_eq!(rig.env.rooms.room_of_token(&a.token), Some(RoomId(7)));
    // A clean leave frees the seat and the resume token at once.
    rig.handle
        .try_send(Command::Leave {
            player: a.id,
            conn: a.conn,
            clean: true,
        })
        .unwrap();
    rig.step();
    assert_eq!(
        (rig.handle.seats.taken(), rig.env.rooms.pool.taken()),
        (1, 1)
    );
    assert_eq!(rig.env.rooms.room_of_token(&a.token), None);
    // A dropped connection keeps its seat for the resume grace only.
    rig.handle
        .try_send(Command::Leave {
            player: b.id,
            conn: b.conn,
            clean: false,
        })
        .unwrap();
    rig.step();
    assert_eq!(rig.handle.seats.taken(), 1);
    for _ in 0..4 {
        rig.step();
    }
    assert_eq!(
        (rig.handle.seats.taken(), rig.env.rooms.pool.taken()),
        (0, 0)
    );
    assert_eq!(rig.env.rooms.live_tokens(), 0);
}

#[test]
fn a_resume_keeps_its_seat_and_moves_its_token() {
    let mut rig = rig(Config::for_tests());
    let a = join(&mut rig, 1, 8);
    rig.handle
        .try_send(Command::Leave {
            player: a.id,
            conn: a.conn,
            clean: false,
        })
        .unwrap();
    rig.step();
    let (req, _rx, mut reply) = request(2, 8, Some(a.token));
    let new_token = req.token;
    rig.handle.try_send(Command::Join(Box::new(req))).unwrap();
    rig.step();
    assert_eq!(reply.try_recv().unwrap().expect("resumed"), a.id);
    assert_eq!(rig.handle.seats.taken(), 1);
    assert_eq!(rig.env.rooms.room_of_token(&a.token), None);
    assert_eq!(rig.env.rooms.room_of_token(&new_token), Some(RoomId(7)));
}

#[test]
fn a_kicked_player_is_closed_with_4005_and_cannot_resume() {
    let mut rig = rig(Config::for_tests());
    let a = join(&mut rig, 1, 8);
    let mut b = join(&mut rig, 2, 8);
    let (reply, mut rx) = oneshot::channel();
    rig.handle
        .try_send(Command::Kick {
            player: a.id,
            reply,
        })
        .unwrap();
    rig.step();
    assert_eq!(rx.try_recv(), Ok(true));
    assert_eq!(a.closer.cause().map(|c| c.code), Some(close::KICKED));
    assert!(b.closer.cause().is_none(), "the other player stays");
    assert_eq!(rig.handle.seats.taken(), 1);
    let (req, _rx, mut reply) = request(3, 8, Some(a.token));
    rig.handle.try_send(Command::Join(Box::new(req))).unwrap();
    rig.step();
    let (error, cause) = reply.try_recv().unwrap().unwrap_err();
    assert_eq!(error.code, ticksync_protocol::ErrorCode::ResumeFailed);
    assert_eq!(cause.code, close::POLICY_VIOLATION);
    let mut world = ClientWorld::new(rig.handle.kind.sim.movement.world_max);
    drain(&mut b, &mut world);
    assert!(
        world.get(a.id).is_none(),
        "the kicked player left the world"
    );
    let (reply, mut rx) = oneshot::channel();
    rig.handle
        .try_send(Command::Kick {
            player: PlayerId(999),
            reply,
        })
        .unwrap();
    rig.step();
    assert_eq!(rx.try_recv(), Ok(false));
}

#[test]
fn a_closed_room_closes_its_players_with_4004_and_gives_everything_back() {
    let mut rig = rig(Config::for_tests());
    let a = join(&mut rig, 1, 8);
    let b = join(&mut rig, 2, 8);
    let (reply, mut rx) = oneshot::channel();
    rig.handle
        .try_send(Command::Close { reply: Some(reply) })
        .unwrap();
    assert_eq!(rig.step(), Stepped::Closed(RoomCloseReason::command));
    assert_eq!(rx.try_recv(), Ok(()));
    for c in [&a, &b] {
        assert_eq!(c.closer.cause().map(|c| c.code), Some(close::ROOM_CLOSED));
    }
    assert!(rig.handle.seats.is_closed());
    assert_eq!(rig.env.rooms.pool.taken(), 0);
    assert_eq!(rig.env.rooms.live_tokens(), 0);
    assert!(rig.env.rooms.get(RoomId(7)).is_none());
    assert_eq!(rig.env.metrics.rooms_closed(RoomCloseReason::command), 1);
}

#[test]
fn an_empty_room_closes_after_the_idle_timeout_unless_a_seat_is_taken() {
    let mut rig = rig(Config {
        room_idle_timeout: Duration::from_millis(200), // 6 ticks
        ..Config::for_tests()
    });
    // A reserved seat keeps the empty room open however long it waits.
    assert!(rig.env.rooms.pool.try_take(&rig.handle.seats));
    for _ in 0..20 {
        assert_eq!(rig.step(), Stepped::Open);
    }
    rig.env.rooms.pool.release(&rig.handle.seats);
    assert_eq!(rig.step(), Stepped::Closed(RoomCloseReason::idle));
    assert!(!rig.handle.seats.try_take(), "a closed room takes nobody");

    let mut rig = super_rig_with_player();
    for _ in 0..20 {
        assert_eq!(rig.step(), Stepped::Open, "a room with a player stays");
    }
}

fn super_rig_with_player() -> Rig {
    let mut rig = rig(Config {
        room_idle_timeout: Duration::from_millis(100),
        ..Config::for_tests()
    });
    join(&mut rig, 1, 64);
    rig
}
