//! Seat accounting without locks: a room's seats taken (players in its world
//! plus seats reserved for players on their way) and whether it has closed,
//! in one atomic word, so "take a seat" and "close because empty" can never
//! both succeed.
//!
//! Every seat taken is released exactly once, by whoever ends it: the room when
//! its player leaves the world, the matchmaker when a reservation expires
//! unused, the connection when its join fails.

use std::sync::atomic::{AtomicU32, Ordering};

const CLOSED: u32 = 1 << 31;

/// One room's seats.
#[derive(Debug)]
pub struct Seats {
    capacity: u32,
    /// Seats taken in the low 31 bits, [`CLOSED`] on top.
    state: AtomicU32,
}

impl Seats {
    /// `capacity` free seats (at most 2^31 - 1).
    pub fn new(capacity: u32) -> Seats {
        Seats {
            capacity: capacity.min(CLOSED - 1),
            state: AtomicU32::new(0),
        }
    }

    /// The room's capacity.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Seats taken (occupied or reserved).
    pub fn taken(&self) -> u32 {
        self.state.load(Ordering::Acquire) & !CLOSED
    }

    /// Free seats (0 once closed).
    pub fn free(&self) -> u32 {
        let s = self.state.load(Ordering::Acquire);
        if s & CLOSED != 0 {
            0
        } else {
            self.capacity.saturating_sub(s)
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
                (s & CLOSED == 0 && s < self.capacity).then_some(s + 1)
            })
            .is_ok()
    }

    /// Gives a seat back.
    pub fn release(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & !CLOSED > 0).then(|| s - 1)
            });
    }

    /// Closes the room if no seat is taken; false if one is (or it is closed).
    pub fn close_if_empty(&self) -> bool {
        self.state
            .compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire)
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
