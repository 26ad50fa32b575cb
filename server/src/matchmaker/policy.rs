//! The joinOrCreate rule as plain functions: which open room a new player
//! should be seated in. No I/O, no clock: the directory supplies the listing,
//! these functions order it, the caller reserves in that order.

use serde::Serialize;

use crate::room::RoomId;

/// One open room as a directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// The room.
    pub room: RoomId,
    /// Its kind.
    pub kind: String,
    /// Seats taken (players plus reservations).
    pub taken: u32,
    /// Its capacity.
    pub capacity: u32,
    /// Whether its match is locked (a kind with `lock=full` and the room was
    /// full once, or `lock=<duration>` and the room is that old): it takes no
    /// newcomer whatever its free seats.
    pub locked: bool,
    /// Where its players connect: the `ws://`/`wss://` base URL of the process
    /// that runs it (empty: this process, whatever address the caller used).
    pub endpoint: String,
}

impl Listing {
    /// Free seats.
    pub fn free(&self) -> u32 {
        self.capacity.saturating_sub(self.taken)
    }
}

/// The rooms of `kind` worth trying, best first: only rooms with a free seat
/// whose match is not locked (Colyseus's `lock()`), the fullest first (so
/// rooms fill up and matches start, as Colyseus's joinOrCreate does), ties
/// broken by room id so every caller tries rooms in the same order.
pub fn join_order(mut rooms: Vec<Listing>, kind: &str) -> Vec<Listing> {
    rooms.retain(|r| r.kind == kind && r.free() > 0 && !r.locked);
    rooms.sort_by(|a, b| b.taken.cmp(&a.taken).then(a.room.cmp(&b.room)));
    rooms
}

/// The rooms `POST /matchmake` offers, best first: [`join_order`] without the
/// rooms everyone has left (no player, none within its resume grace, no
/// reservation). Their match is over: a newcomer gets a fresh room, as a
/// Colyseus room is disposed when its last client leaves, and the empty room
/// closes at `--room-idle-timeout`. (A plain `/ws` client still shares the
/// default kind's room, empty or not: it knows nothing of matches.)
pub fn matchmake_order(mut rooms: Vec<Listing>, kind: &str) -> Vec<Listing> {
    rooms.retain(|r| r.taken > 0);
    join_order(rooms, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(id: u64, kind: &str, taken: u32, capacity: u32) -> Listing {
        Listing {
            room: RoomId(id),
            kind: kind.into(),
            taken,
            capacity,
            locked: false,
            endpoint: String::new(),
        }
    }

    #[test]
    fn a_locked_room_is_never_offered() {
        let locked = Listing {
            locked: true,
            ..listing(1, "duel", 1, 2)
        };
        let rooms = vec![locked, listing(2, "duel", 0, 2)];
        assert!(matchmake_order(rooms.clone(), "duel").is_empty());
        let plain: Vec<u64> = join_order(rooms, "duel").iter().map(|l| l.room.0).collect();
        assert_eq!(plain, [2]);
    }

    #[test]
    fn matchmaking_skips_rooms_everyone_left() {
        let rooms = vec![
            listing(1, "squad", 0, 8),
            listing(2, "squad", 3, 8),
            listing(3, "squad", 0, 8),
        ];
        let ids = |v: Vec<Listing>| v.iter().map(|l| l.room.0).collect::<Vec<_>>();
        assert_eq!(ids(matchmake_order(rooms.clone(), "squad")), [2]);
        // A plain client's seating still fills empty rooms.
        assert_eq!(ids(join_order(rooms, "squad")), [2, 1, 3]);
    }

    #[test]
    fn fullest_open_room_of_the_kind_first() {
        let rooms = vec![
            listing(1, "duel", 1, 2),
            listing(2, "arena", 60, 64),
            listing(3, "arena", 64, 64),
            listing(4, "arena", 10, 64),
            listing(5, "arena", 60, 64),
        ];
        let order: Vec<u64> = join_order(rooms, "arena")
            .iter()
            .map(|l| l.room.0)
            .collect();
        assert_eq!(order, [2, 5, 4]);
        assert!(join_order(vec![listing(3, "arena", 64, 64)], "arena").is_empty());
    }
}
