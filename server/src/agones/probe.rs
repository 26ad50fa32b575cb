//! The [`Probe`] of a running server: tick-thread liveness as `/healthz`
//! judges it, and the room registry's counts. All atomics and a short map
//! walk; never a message to a room.

use std::sync::Arc;

use super::{Fill, Load, Probe};
use crate::net::STALLED_TICK_THREAD;
use crate::shared::Shared;

/// Reads a [`Shared`].
#[derive(Debug)]
pub struct ServerProbe {
    shared: Arc<Shared>,
}

impl ServerProbe {
    /// A probe of `shared`.
    pub fn new(shared: Arc<Shared>) -> ServerProbe {
        ServerProbe { shared }
    }
}

impl Probe for ServerProbe {
    fn tick_threads_alive(&self) -> bool {
        self.shared.placement.stalled_threads(STALLED_TICK_THREAD) == 0
    }

    fn load(&self) -> Load {
        let rooms = self.shared.rooms();
        Load {
            rooms: Fill {
                count: rooms.len() as u64,
                capacity: rooms.max_rooms() as u64,
            },
            // Seats taken: players in rooms, within their resume grace, or
            // holding a seat the matchmaker reserved. What allocation asks
            // is whether more players fit, and a reserved seat is spoken for.
            players: Fill {
                count: u64::from(rooms.pool.taken()),
                capacity: self.shared.config.max_players as u64,
            },
        }
    }
}
