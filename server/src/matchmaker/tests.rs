//! The matchmaker over the local directory, without sockets or tick threads:
//! joinOrCreate order, capacity under concurrency, single-use claims, expiry.

use std::sync::Arc;
use std::time::Duration;

use super::directory::{Claim, Directory, DirectoryError, LocalDirectory};
use super::matchmake;
use super::seat::SeatId;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::room::{RoomEnv, RoomHost, Rooms};
use crate::schedule::Placement;

const HOLD: Duration = Duration::from_secs(10);

/// A directory over kinds `duel` (2 seats), `arena` (4 seats), `squad` (3
/// seats, locked once full) and `lobby` (4 seats, locked 300 ms after it
/// opened), at most `max_rooms` rooms; rooms are registered but never ticked.
fn directory(max_rooms: usize, max_players: u32) -> Arc<LocalDirectory> {
    let config = Config {
        room_kinds: vec![
            "duel:capacity=2".parse().unwrap(),
            "squad:capacity=3,lock=full".parse().unwrap(),
            "lobby:capacity=4,lock=300ms".parse().unwrap(),
        ],
        room_capacity: 4,
        default_kind: "arena".into(),
        ..Config::for_tests()
    };
    let env = RoomEnv {
        metrics: Arc::new(Metrics::new()),
        rooms: Arc::new(Rooms::new(max_rooms, max_players)),
    };
    let host = RoomHost::new(
        config.kinds().unwrap(),
        env,
        Arc::new(Placement::without_threads()),
    );
    Arc::new(LocalDirectory::new(Arc::new(host)))
}

fn taken(dir: &LocalDirectory) -> (u32, usize) {
    let rooms = &dir.host().env().rooms;
    (rooms.pool.taken(), rooms.len())
}

#[tokio::test]
async fn fills_the_fullest_room_then_opens_another() {
    let dir = directory(10, 100);
    let mut rooms = Vec::new();
    for _ in 0..5 {
        let r = matchmake(dir.as_ref(), "duel", None, 0, HOLD)
            .await
            .unwrap();
        assert_eq!(r.reservation.kind, "duel");
        rooms.push(r.listing.room);
    }
    assert_eq!(
        rooms[0], rooms[1],
        "the second player joins the first's room"
    );
    assert_ne!(rooms[1], rooms[2], "a full duel opens another");
    assert_eq!(rooms[2], rooms[3]);
    assert_eq!(taken(&dir), (5, 3));
    assert_eq!(dir.pending(), 5);
    assert_eq!(
        matchmake(dir.as_ref(), "chess", None, 0, HOLD).await,
        Err(DirectoryError::UnknownKind("chess".into()))
    );
}

#[tokio::test]
async fn a_reservation_is_claimed_once_and_only_in_its_room() {
    let dir = directory(10, 100);
    let r = matchmake(dir.as_ref(), "arena", Some("ada".into()), 1_000, HOLD)
        .await
        .unwrap();
    let (room, seat) = (r.listing.room, r.reservation.seat);
    assert_eq!(
        dir.claim(room, SeatId(seat.0 ^ 1), 1_001).await,
        Ok(Claim::Unknown)
    );
    let other = crate::room::RoomId(room.0 ^ 1);
    assert_eq!(dir.claim(other, seat, 1_001).await, Ok(Claim::Unknown));
    let Ok(Claim::Taken(claimed)) = dir.claim(room, seat, 1_001).await else {
        panic!("the reservation is claimed");
    };
    assert_eq!(claimed.identity.as_deref(), Some("ada"));
    assert_eq!(
        dir.claim(room, seat, 1_002).await,
        Ok(Claim::Unknown),
        "single use"
    );
    // The claimed seat now belongs to the player's join, not the directory.
    assert_eq!(dir.expire(u64::MAX).await, Ok(0));
    assert_eq!(taken(&dir), (1, 1));
}

#[tokio::test]
async fn unclaimed_reservations_expire_and_free_their_seats() {
    let dir = directory(10, 100);
    let a = matchmake(dir.as_ref(), "duel", None, 0, HOLD)
        .await
        .unwrap();
    let b = matchmake(dir.as_ref(), "duel", None, 5_000, HOLD)
        .await
        .unwrap();
    assert_eq!(a.listing.room, b.listing.room);
    assert_eq!(dir.expire(9_999).await, Ok(0));
    assert_eq!(dir.expire(10_000).await, Ok(1), "a's hold ran out");
    assert_eq!(taken(&dir), (1, 1));
    // A claim at or after the expiry, before the reaper ran, fails (expired,
    // not "used") and frees.
    assert_eq!(
        dir.claim(b.listing.room, b.reservation.seat, 15_000).await,
        Ok(Claim::Expired)
    );
    assert_eq!(taken(&dir), (0, 1));
    // Both seats are free again. The room everyone left is not offered to the
    // next player (its match is over, `policy::matchmake_order`): a fresh
    // room is, and the empty one closes when idle.
    let c = matchmake(dir.as_ref(), "duel", None, 20_000, HOLD)
        .await
        .unwrap();
    assert_ne!(c.listing.room, a.listing.room);
    assert_eq!(taken(&dir), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_matchmakes_never_overfill_and_open_few_rooms() {
    // 100 callers for 3 rooms × 4 seats (the last 12 seats of the process).
    let dir = directory(3, 1_000);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let dir = dir.clone();
            tokio::spawn(async move { matchmake(dir.as_ref(), "arena", None, 0, HOLD).await })
        })
        .collect();
    let mut seated = std::collections::HashMap::new();
    let mut full = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => *seated.entry(r.listing.room).or_insert(0u32) += 1,
            Err(DirectoryError::Full) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(full, 88);
    assert_eq!(seated.len(), 3);
    assert!(seated.values().all(|&n| n == 4), "{seated:?}");
    for room in dir.host().env().rooms.handles(None) {
        assert_eq!(room.seats.taken(), 4);
    }
    assert_eq!(taken(&dir), (12, 3));
    assert_eq!(dir.expire(u64::MAX).await, Ok(12));
    assert_eq!(taken(&dir), (0, 3));
}

#[tokio::test]
async fn a_draining_host_opens_no_room() {
    let dir = directory(10, 100);
    dir.host().stop_opening();
    assert_eq!(
        matchmake(dir.as_ref(), "duel", None, 0, HOLD).await,
        Err(DirectoryError::Draining)
    );
}

#[tokio::test]
async fn a_room_of_a_locking_kind_is_not_offered_once_it_was_full() {
    let dir = directory(10, 100);
    let mut seats = Vec::new();
    for at in [0, 0, 5_000] {
        seats.push(
            matchmake(dir.as_ref(), "squad", None, at, HOLD)
                .await
                .unwrap(),
        );
    }
    let room = seats[0].listing.room;
    assert!(
        seats.iter().all(|s| s.listing.room == room),
        "one full squad"
    );
    // Two of its three seats come free again (their players never came).
    assert_eq!(dir.expire(10_000).await, Ok(2));
    let info = |id| {
        let rooms = dir.host().env().rooms.list();
        rooms.into_iter().find(|r| r.id == id).expect("listed")
    };
    assert_eq!(
        (info(room).players + info(room).reserved, info(room).locked),
        (1, true)
    );
    // Its match is locked: a newcomer gets a fresh room, not a free seat there.
    let next = matchmake(dir.as_ref(), "squad", None, 10_000, HOLD)
        .await
        .unwrap();
    assert_ne!(next.listing.room, room);
    assert!(!info(next.listing.room).locked, "not full yet");
    // A kind that does not lock refills a freed seat (the contrast).
    let a = matchmake(dir.as_ref(), "duel", None, 0, HOLD)
        .await
        .unwrap();
    let b = matchmake(dir.as_ref(), "duel", None, 5_000, HOLD)
        .await
        .unwrap();
    assert_eq!(a.listing.room, b.listing.room);
    assert_eq!(dir.expire(10_000).await, Ok(1));
    let c = matchmake(dir.as_ref(), "duel", None, 10_000, HOLD)
        .await
        .unwrap();
    assert_eq!(c.listing.room, a.listing.room);
}

#[tokio::test]
async fn a_room_of_a_timed_lock_kind_is_not_offered_once_its_match_started() {
    let dir = directory(10, 100);
    let first = matchmake(dir.as_ref(), "lobby", None, 0, HOLD)
        .await
        .unwrap();
    let second = matchmake(dir.as_ref(), "lobby", None, 0, HOLD)
        .await
        .unwrap();
    assert_eq!(
        first.listing.room, second.listing.room,
        "it fills meanwhile"
    );
    // Its 300 ms of lobby are over: the match has started, two seats free.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let late = matchmake(dir.as_ref(), "lobby", None, 0, HOLD)
        .await
        .unwrap();
    assert_ne!(late.listing.room, first.listing.room);
    let rooms = dir.host().env().rooms.list();
    let locked = |id| rooms.iter().find(|r| r.id == id).map(|r| r.locked);
    assert_eq!(locked(first.listing.room), Some(true));
    assert_eq!(locked(late.listing.room), Some(false));
}
