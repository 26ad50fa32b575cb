//! Labelled counters whose every label value is known: the reason enums and
//! [`ByReason`], a counter family that exports each reason at 0 from the first
//! scrape, so a dashboard's `rate()` is never empty until the first incident.
//!
//! To add a labelled counter: declare its reasons with [`reasons!`] (the macro
//! lists every variant in [`Reasons::ALL`], so none can be forgotten), hold a
//! `ByReason<YourEnum>` in `Metrics`, register its [`ByReason::family`], and list
//! the family with every value in docs/OPERATIONS.md section 4 (a test checks).

use std::fmt::Debug;
use std::hash::Hash;

use prometheus_client::encoding::EncodeLabelValue;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// A label type with a fixed, known set of values.
pub trait Reasons: EncodeLabelValue + Copy + Hash + Eq + Debug + Send + Sync + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The label's name.
    const LABEL: &'static str = "reason";
}

/// Declares a label enum (variants are the label values, in snake case) and its
/// [`Reasons::ALL`].
macro_rules! reasons {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident, )+
        }
    ) => {
        reasons! {
            label "reason";
            $(#[$meta])*
            pub enum $name { $( $(#[$vmeta])* $variant, )+ }
        }
    };
    (
        label $label:literal;
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
        #[allow(non_camel_case_types)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl Reasons for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            const LABEL: &'static str = $label;
        }
    };
}

reasons! {
    /// Why an input was not applied.
    pub enum InputRejection {
        /// Sequence number at or below one already received (duplicate or old).
        stale,
        /// The player's input queue was full.
        queue_full,
        /// The tick loop's command queue was full.
        server_busy,
        /// Over the connection's message rate limit.
        rate_limited,
    }
}

reasons! {
    /// Why a connection ended.
    pub enum DisconnectReason {
        /// The client closed the WebSocket.
        client_closed,
        /// The TCP connection broke.
        connection_lost,
        /// No complete upgrade + Hello within the handshake timeout.
        handshake_timeout,
        /// Nothing received within the idle timeout.
        idle_timeout,
        /// Undecodable or unexpected message.
        protocol_error,
        /// A text frame.
        text_frame,
        /// A message over the size limit.
        too_big,
        /// Outbound queue full for the stall timeout.
        slow_consumer,
        /// Hello with the wrong protocol version.
        version_mismatch,
        /// No room for another player.
        server_full,
        /// Bad or expired resume token.
        resume_failed,
        /// Join token missing or invalid.
        auth_failed,
        /// Seat token forged, expired, reused, for another room, or missing
        /// for a named room.
        seat_refused,
        /// Flooding beyond the rate limit.
        rate_limited,
        /// Another connection resumed the session.
        taken_over,
        /// Server shutdown.
        shutdown,
        /// The player's room closed (command or fault), or the room the URL
        /// named is not open.
        room_closed,
        /// Kicked from its room.
        kicked,
    }
}

reasons! {
    /// Why a room closed.
    pub enum RoomCloseReason {
        /// No players and no reserved seat for `--room-idle-timeout`.
        idle,
        /// Closed on command (`POST /rooms/{id}/close`, `RoomHandle::close`).
        command,
        /// Its tick panicked (a bug): it was closed to protect the others.
        failed,
    }
}

reasons! {
    label "outcome";
    /// How a `POST /matchmake` ended.
    pub enum MatchmakeOutcome {
        /// A seat was reserved (200).
        ok,
        /// No free seat and no room could be opened (503).
        full,
        /// The server is draining (503).
        draining,
        /// The room directory failed (503).
        unavailable,
        /// Unknown room kind or malformed JSON (400).
        bad_request,
        /// Missing or invalid join token with `--auth-secret` (401).
        unauthorized,
        /// Body over the limit or without a length (413, 411).
        too_large,
        /// Over the address's `--matchmake-rate` (429).
        rate_limited,
        /// The address holds `--seats-per-ip` seats reserved within one
        /// `--seat-timeout` (429).
        seats_held,
    }
}

reasons! {
    label "route";
    /// A public HTTP route with a per-address limit.
    pub enum ApiRoute {
        /// `POST /matchmake`.
        matchmake,
        /// `GET /rooms`.
        rooms,
    }
}

reasons! {
    /// Why a connection was refused before the WebSocket upgrade.
    pub enum Refusal {
        /// `--max-connections` reached (HTTP 503).
        server_full,
        /// `--max-connections-per-ip` reached for the client's address (HTTP 429).
        per_ip_limit,
        /// The server is draining for shutdown (HTTP 503).
        draining,
    }
}

reasons! {
    label "call";
    /// A call to the Agones SDK server (`--agones`, docs/OPERATIONS.md section 7).
    pub enum SdkCall {
        /// `Ready`: the listener is up.
        ready,
        /// `Health`: a ping while the tick threads are alive.
        health,
        /// `Shutdown`: after the drain.
        shutdown,
        /// `SetLabel`.
        label,
        /// `SetAnnotation`.
        annotation,
        /// `UpdateCounter` (the `rooms` and `players` counters).
        counter,
        /// `GetGameServer`.
        gameserver,
        /// `WatchGameServer`: opening the stream, or the stream breaking.
        watch,
    }
}

reasons! {
    /// Why a request to the monitor or the admin API was refused.
    pub enum AdminRefusal {
        /// No `Authorization: Bearer` credential.
        missing,
        /// A credential that is not the admin token.
        invalid,
    }
}

reasons! {
    /// How a TLS certificate reload ended.
    pub enum ReloadResult {
        /// The new pair is in use for new connections.
        ok,
        /// The new pair was refused; the previous one stays in use.
        failed,
    }
}

/// The label set of a [`ByReason`] family: `{reason="..."}` (or the type's
/// [`Reasons::LABEL`]).
type ReasonLabel<R> = [(&'static str, R); 1];

/// A counter family labelled `reason` (or [`Reasons::LABEL`]), created with every value of `R` at 0.
/// Clones share the counters.
#[derive(Debug, Clone)]
pub struct ByReason<R: Reasons> {
    family: Family<ReasonLabel<R>, Counter>,
}

impl<R: Reasons> Default for ByReason<R> {
    fn default() -> Self {
        let family = Family::default();
        for &reason in R::ALL {
            let _ = family.get_or_create(&[(R::LABEL, reason)]);
        }
        ByReason { family }
    }
}

impl<R: Reasons> ByReason<R> {
    /// Adds `n` to `reason`'s counter. Adding 0 does nothing, without the
    /// family's lock and hash: the tick adds every input's (mostly zero)
    /// rejections, ~60,000 a second at 2,000 players (~9 % of the tick
    /// thread's samples in a profile).
    pub fn inc_by(&self, reason: R, n: u64) {
        if n > 0 {
            self.family.get_or_create(&[(R::LABEL, reason)]).inc_by(n);
        }
    }

    /// `reason`'s count so far.
    pub fn get(&self, reason: R) -> u64 {
        self.family.get_or_create(&[(R::LABEL, reason)]).get()
    }

    /// The family, to register (a shared handle to the same counters).
    pub fn family(&self) -> Family<ReasonLabel<R>, Counter> {
        self.family.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn every_reason_is_exported_at_zero_before_any_is_counted() {
        let counts: ByReason<Refusal> = ByReason::default();
        let mut registry = Registry::default();
        registry.register("refused", "test", counts.family());
        counts.inc_by(Refusal::draining, 3);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            "refused_total{reason=\"server_full\"} 0",
            "refused_total{reason=\"per_ip_limit\"} 0",
            "refused_total{reason=\"draining\"} 3",
        ] {
            assert!(text.contains(line), "missing {line} in:\n{text}");
        }
        assert_eq!(counts.get(Refusal::draining), 3);
    }
}
