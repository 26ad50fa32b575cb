//! Seat accounting without locks: a room's seats taken (players in its world
//! plus seats reserved for players on their way), whether it has closed and
//! whether its match is locked, in one atomic word, so "take a seat" and
//! "close because empty" can never both succeed, and the seat that fills a
//! room of a locking kind locks it in the same step.
//!
//! Every seat taken is released exactly once, by whoever ends it: the room when
//! its player leaves the world, the matchmaker when a reservation expires
//! unused, the connection when its join fails.

use std::sync::atomic::{AtomicU32, Ordering};

const CLOSED: u32 = 1 << 31;
const LOCKED: u32 = 1 << 30;
const TAKEN: u32 = LOCKED - 1;

/// One room's seats.
#[derive(Debug)]
pub struct Seats {
    capacity: u32,
    /// Whether the seat that fills the room locks it ([`Seats::locking`]).
    lock_when_full: bool,
    /// Seats taken in the low 30 bits, [`LOCKED`] and [`CLOSED`] on top.
    state: AtomicU32,
}

impl Seats {
    /// `capacity` free seats (at most 2^30 - 1).
    pub fn new(capacity: u32) -> Seats {
        Seats {
            capacity: capacity.min(TAKEN),
            lock_when_full: false,
            state: AtomicU32::new(0),
        }
    }

    /// [`Seats::new`] for a room whose match locks once full (a kind with
    /// `lock=full`): the seat that takes the last free one also locks it, for
    /// good, so matchmaking offers the room no more even after players leave.
    pub fn locking(capacity: u32) -> Seats {
        Seats {
            lock_when_full: true,
            ..Seats::new(capacity)
        }
    }

    /// Whether the room's match is locked (it was full once, `lock=full`).
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Acquire) & LOCKED != 0
    }

    /// Seats taken and whether the room is locked, read together.
    pub fn taken_and_locked(&self) -> (u32, bool) {
        let s = self.state.load(Ordering::Acquire);
        (s & TAKEN, s & LOCKED != 0)
    }

    /// The room's capacity.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Seats taken (occupied or reserved).
    pub fn taken(&self) -> u32 {
        self.state.load(Ordering::Acquire) & TAKEN
    }

    /// Free seats (0 once closed).
    pub fn free(&self) -> u32 {
        let s = self.state.load(Ordering::Acquire);
        if s & CLOSED != 0 {
            0
        } else {
            self.capacity.saturating_sub(s & TAKEN)
        }
    }

    /// Whether the room has closed.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Takes a seat if the room is open and not full.
    pub fn try_take(&self) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                let taken = s & TAKEN;
                (s & CLOSED == 0 && taken < self.capacity).then(|| {
                    let full = self.lock_when_full && taken + 1 == self.capacity;
                    (s + 1) | if full { LOCKED } else { 0 }
                })
            })
            .is_ok()
    }

    /// Gives a seat back.
    pub fn release(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & TAKEN > 0).then(|| s - 1)
            });
    }

    /// Closes the room if no seat is taken; false if one is (or it is closed).
    pub fn close_if_empty(&self) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & (TAKEN | CLOSED) == 0).then_some(s | CLOSED)
            })
            .is_ok()
    }

    /// Closes the room whatever is taken; returns false if it was closed already.
    pub fn close(&self) -> bool {
        self.state.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0
    }
}

/// Seats across every room of the process (`--max-players`): taken together
/// with a room's seat, released together with it.
#[derive(Debug)]
pub struct SeatPool(Seats);

impl SeatPool {
    /// A pool of `max` seats.
    pub fn new(max: u32) -> SeatPool {
        SeatPool(Seats::new(max))
    }

    /// Takes one seat from the pool and one from `room`, or neither.
    pub fn try_take(&self, room: &Seats) -> bool {
        if !self.0.try_take() {
            return false;
        }
        if room.try_take() {
            return true;
        }
        self.0.release();
        false
    }

    /// Releases one seat of the pool and one of `room`.
    pub fn release(&self, room: &Seats) {
        room.release();
        self.0.release();
    }

    /// Releases `n` seats of the pool only (a room closed with `n` players in).
    pub fn release_n(&self, n: u32) {
        for _ in 0..n {
            self.0.release();
        }
    }

    /// Seats taken across the process.
    pub fn taken(&self) -> u32 {
        self.0.taken()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn seats_fill_release_and_close() {
        let s = Seats::new(2);
        assert!(s.try_take() && s.try_take());
        assert!(!s.try_take());
        assert_eq!((s.taken(), s.free()), (2, 0));
        assert!(!s.close_if_empty());
        s.release();
        s.release();
        s.release(); // never below zero
        assert_eq!(s.taken(), 0);
        assert!(s.close_if_empty());
        assert!(!s.try_take(), "a closed room takes nobody");
        assert!(!s.close(), "closed once");
        assert_eq!(s.free(), 0);
    }

    #[test]
    fn a_locking_room_locks_for_good_with_the_seat_that_fills_it() {
        let s = Seats::locking(2);
        assert!(s.try_take());
        assert!(!s.is_locked(), "not full yet");
        s.release();
        assert!(s.try_take() && s.try_take());
        assert_eq!(s.taken_and_locked(), (2, true));
        s.release();
        assert_eq!((s.taken(), s.free()), (1, 1));
        assert!(s.is_locked(), "a seat freed does not unlock it");
        s.release();
        assert!(s.close_if_empty(), "a locked room still closes when empty");
        assert!(!s.try_take());
        // A room of a kind that does not lock never does.
        let plain = Seats::new(1);
        assert!(plain.try_take());
        assert!(!plain.is_locked());
    }

    #[test]
    fn concurrent_takers_never_overfill_and_close_races_take() {
        let s = Arc::new(Seats::new(8));
        let pool = Arc::new(SeatPool::new(5));
        let got: u32 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..100)
                .map(|_| {
                    let (s, pool) = (s.clone(), pool.clone());
                    scope.spawn(move || u32::from(pool.try_take(&s)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!((got, s.taken(), pool.taken()), (5, 5, 5));
        // A take and a close-if-empty on an empty room: exactly one wins.
        for _ in 0..200 {
            let room = Arc::new(Seats::new(1));
            let (a, b) = std::thread::scope(|scope| {
                let r = room.clone();
                let t = scope.spawn(move || r.try_take());
                let c = room.close_if_empty();
                (t.join().unwrap(), c)
            });
            assert!(a != b, "take {a}, close {b}");
        }
    }
}
