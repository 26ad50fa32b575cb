//! Seat tokens: what `POST /matchmake` hands a player, and what the room's
//! process checks when the player's `Hello` presents it (docs/PROTOCOL.md,
//! "Matchmaking").
//!
//! ```text
//! token   = base64url(payload) "." base64url(mac)          (no padding)
//! payload = "seat:" room ":" seat ":" expires_ms ":" identity
//! room    = the room id, 16 lowercase hex digits
//! seat    = the reservation's id, 16 lowercase hex digits
//! expires_ms = unix time in milliseconds, decimal
//! identity   = the player's join-token identity, empty without --auth-secret
//! mac     = HMAC-SHA256(seat key, payload)
//! seat key = HMAC-SHA256(--auth-secret, "ticksync seat token v1"), or a random
//!            key per process without --auth-secret
//! ```
//!
//! The signature makes a token unforgeable and binds it to one room; single use
//! is the directory's part ([`super::directory::Directory::claim`]): a seat is
//! claimed once. Time is a parameter, as in `auth.rs`.

use std::fmt;
use std::str::FromStr;

use crate::auth::{self, AuthError, AuthSecret};
use crate::room::RoomId;

/// The domain a seat key is derived under from the auth secret.
const SEAT_KEY_DOMAIN: &str = "ticksync seat token v1";
const PREFIX: &str = "seat:";

/// A reservation's id: 64 random bits, 16 hex digits in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatId(pub u64);

impl SeatId {
    /// A fresh random id.
    pub fn random() -> SeatId {
        SeatId(rand::random())
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for SeatId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<RoomId>().map(|r| SeatId(r.0))
    }
}

/// The key that signs seat tokens. Every process that checks a seat must hold
/// the key that signed it: derived from `--auth-secret` (shared by a fleet),
/// else random per process.
#[derive(Debug, Clone)]
pub struct SeatKey(AuthSecret);

impl SeatKey {
    /// The seat key of a server with `secret` (`--auth-secret`), or a random
    /// one for a server without.
    pub fn new(secret: Option<&AuthSecret>) -> SeatKey {
        SeatKey(secret.map_or_else(AuthSecret::random, |s| s.derive(SEAT_KEY_DOMAIN)))
    }
}

/// What a seat token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatClaims {
    /// The room the seat is in.
    pub room: RoomId,
    /// The reservation.
    pub seat: SeatId,
    /// Unix time in milliseconds from which the token is refused.
    pub expires_ms: u64,
    /// The identity the seat was reserved for (`None` on an open server).
    pub identity: Option<String>,
}

/// Why a seat token was refused. Every case ends the connection with
/// `Error AuthFailed` (the text says which) and close 1008.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    /// Not a seat token's shape.
    #[error("the seat token is malformed")]
    Malformed,
    /// The MAC does not match: forged, altered, or from another server.
    #[error("the seat token has an invalid signature")]
    BadSignature,
    /// Signed, but its reservation ran out: matchmake again.
    #[error("the seat token has expired: matchmake again")]
    Expired,
    /// Valid when checked, but its reservation ran out before the claim
    /// reached it (the claim waited, e.g. on the fleet directory).
    #[error("the seat token expired while its seat was being claimed: matchmake again")]
    ExpiredDuringClaim,
    /// The seat was claimed already (or its reservation was never made).
    #[error("the seat token was already used: matchmake again")]
    Used,
    /// The URL names another room than the token.
    #[error("the seat token is for another room")]
    WrongRoom,
    /// `Hello.name` differs from the identity the seat was reserved for.
    #[error("Hello.name is not the identity the seat was reserved for")]
    NameMismatch,
    /// A room named in the URL needs a seat token from `POST /matchmake`.
    #[error("joining a named room needs a seat token from POST /matchmake in Hello.auth_token")]
    Missing,
}

/// Whether `token` has the shape of a seat token (not checked: [`verify`]
/// decides). Join tokens' payloads start with a digit, seat tokens' with
/// `seat:`, so a server tells the two apart without trying both keys.
pub fn is_seat_token(token: &str) -> bool {
    auth::unverified_payload(token).is_ok_and(|p| p.starts_with(PREFIX.as_bytes()))
}

/// Signs a seat token.
pub fn mint(key: &SeatKey, claims: &SeatClaims) -> String {
    let payload = format!(
        "{PREFIX}{}:{}:{}:{}",
        claims.room,
        claims.seat,
        claims.expires_ms,
        claims.identity.as_deref().unwrap_or("")
    );
    auth::seal(&key.0, &payload)
}

/// Checks a seat token's signature and expiry at unix time `now_ms`.
pub fn verify(key: &SeatKey, token: &str, now_ms: u64) -> Result<SeatClaims, SeatError> {
    let claims = verify_signature(key, token)?;
    if now_ms >= claims.expires_ms {
        return Err(SeatError::Expired);
    }
    Ok(claims)
}

/// Checks a seat token's signature only: a resuming player proves its
/// identity with the token it joined with, however long ago.
pub fn verify_signature(key: &SeatKey, token: &str) -> Result<SeatClaims, SeatError> {
    let payload = auth::open(&key.0, token).map_err(|e| match e {
        AuthError::BadSignature => SeatError::BadSignature,
        _ => SeatError::Malformed,
    })?;
    let rest = payload.strip_prefix(PREFIX).ok_or(SeatError::Malformed)?;
    let mut parts = rest.splitn(4, ':');
    let mut next = || parts.next().ok_or(SeatError::Malformed);
    let room = next()?.parse().map_err(|_| SeatError::Malformed)?;
    let seat = next()?.parse().map_err(|_| SeatError::Malformed)?;
    let expires_ms = next()?.parse().map_err(|_| SeatError::Malformed)?;
    let identity = next()?;
    Ok(SeatClaims {
        room,
        seat,
        expires_ms,
        identity: (!identity.is_empty()).then(|| identity.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> AuthSecret {
        "0123456789abcdef-test-secret".parse().unwrap()
    }

    fn claims(identity: Option<&str>) -> SeatClaims {
        SeatClaims {
            room: RoomId(0xabc),
            seat: SeatId(0x1234_5678_9abc_def0),
            expires_ms: 10_000,
            identity: identity.map(str::to_string),
        }
    }

    #[test]
    fn a_seat_token_verifies_until_it_expires() {
        let key = SeatKey::new(Some(&secret()));
        for c in [claims(None), claims(Some("ada:1"))] {
            let t = mint(&key, &c);
            assert!(is_seat_token(&t) && t.len() < 200, "{t}");
            assert_eq!(verify(&key, &t, 9_999), Ok(c));
            assert_eq!(verify(&key, &t, 10_000), Err(SeatError::Expired));
        }
    }

    #[test]
    fn seat_and_join_tokens_never_pass_for_each_other() {
        let s = secret();
        let key = SeatKey::new(Some(&s));
        let join = auth::mint(&s, "ada", 100).unwrap();
        assert!(!is_seat_token(&join));
        assert_eq!(verify(&key, &join, 0), Err(SeatError::BadSignature));
        // A seat payload signed with the auth secret itself (not the derived
        // key) is refused: the domains are separate.
        let t = auth::seal(&s, "seat:0000000000000abc:0000000000000001:99:ada");
        assert!(is_seat_token(&t));
        assert_eq!(verify(&key, &t, 0), Err(SeatError::BadSignature));
        let seat = mint(&key, &claims(Some("ada")));
        assert!(auth::verify(&s, &seat, 0).is_err());
    }

    #[test]
    fn forged_and_foreign_seat_tokens_fail() {
        let key = SeatKey::new(Some(&secret()));
        let t = mint(&key, &claims(Some("ada")));
        // Another room, same MAC.
        let (_, tag) = t.split_once('.').unwrap();
        let other = auth::seal(&key.0, "seat:0000000000000abd:123456789abcdef0:10000:ada");
        let (payload, _) = other.split_once('.').unwrap();
        let forged = format!("{payload}.{tag}");
        assert_eq!(verify(&key, &forged, 0), Err(SeatError::BadSignature));
        assert_eq!(
            verify(&SeatKey::new(None), &t, 0),
            Err(SeatError::BadSignature),
            "a random key does not verify another's tokens"
        );
        let bad = auth::seal(&key.0, "seat:xyz:1:2:");
        for bad in ["", "abc", "a.b.c", &"x".repeat(600), &bad] {
            assert!(verify(&key, bad, 0).is_err(), "{bad}");
        }
    }
}
