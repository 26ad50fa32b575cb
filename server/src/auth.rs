//! Join tokens: who may join, signed by whoever holds the server's auth secret.
//!
//! Format (docs/OPERATIONS.md, "Join tokens"):
//!
//! ```text
//! token   = base64url(payload) "." base64url(mac)      (no padding)
//! payload = expiry ":" name                             (UTF-8)
//! expiry  = unix time in seconds, decimal
//! name    = the player's identity, 1..=32 bytes of UTF-8 (may contain ':')
//! mac     = HMAC-SHA256(secret, payload), 32 bytes
//! ```
//!
//! Time is a parameter of [`verify`] and [`mint`], so expiry is tested without a
//! clock; the server passes [`unix_now`].

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use ticksync_protocol::messages::{MAX_AUTH_TOKEN_LEN, MAX_NAME_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted secret, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// The shared secret that signs join tokens. Its `Debug` never shows it, so the
/// config can be logged at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSecret(Vec<u8>);

impl AuthSecret {
    /// A secret from raw bytes; at least [`MIN_SECRET_LEN`] of them.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<AuthSecret, AuthError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(AuthError::WeakSecret);
        }
        Ok(AuthSecret(bytes))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }

    /// A key for another kind of token, derived from this secret
    /// (HMAC(secret, `domain`)): a token of one kind never verifies as another,
    /// and the operator still configures one secret.
    pub fn derive(&self, domain: &str) -> AuthSecret {
        let mut mac = self.mac();
        mac.update(domain.as_bytes());
        AuthSecret(mac.finalize().into_bytes().to_vec())
    }

    /// A random 32-byte secret (keys that live as long as the process).
    pub fn random() -> AuthSecret {
        AuthSecret(rand::random::<[u8; 32]>().to_vec())
    }
}

impl fmt::Debug for AuthSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthSecret(<redacted>)")
    }
}

impl FromStr for AuthSecret {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuthSecret::new(s.as_bytes())
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinClaims {
    /// The player's identity (also its display name).
    pub name: String,
    /// Unix time in seconds after which the token is refused.
    pub expires: u64,
}

/// Why a token was refused (or could not be made).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `Hello` carried no token but the server requires one.
    #[error("Hello.auth_token is required: this server admits only players with a join token")]
    Missing,
    /// Not `base64url.base64url`, or the payload is not `expiry:name`.
    #[error("Hello.auth_token is not a join token (two base64url parts joined by '.')")]
    Malformed,
    /// The MAC does not match: forged, altered or signed with another secret.
    #[error("Hello.auth_token has an invalid signature")]
    BadSignature,
    /// Signed, but its expiry has passed.
    #[error("Hello.auth_token has expired")]
    Expired,
    /// `Hello.name` differs from the identity the token was issued for.
    #[error("Hello.name is not the name the join token was issued for")]
    NameMismatch,
    /// The name is empty or longer than the protocol allows.
    #[error("the name must be 1 to {MAX_NAME_LEN} bytes of UTF-8")]
    BadName,
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("auth secret must be at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
}

/// Signs `payload`: `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`.
pub fn seal(secret: &AuthSecret, payload: &str) -> String {
    let mut mac = secret.mac();
    mac.update(payload.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The payload of a token [`seal`]ed with `secret`: the MAC is compared in
/// constant time and checked before the payload is trusted.
pub fn open(secret: &AuthSecret, token: &str) -> Result<String, AuthError> {
    if token.len() > MAX_AUTH_TOKEN_LEN {
        return Err(AuthError::Malformed);
    }
    let payload = unverified_payload(token)?;
    let (_, tag) = token.split_once('.').ok_or(AuthError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| AuthError::Malformed)?;
    let mut mac = secret.mac();
    mac.update(&payload);
    mac.verify_slice(&tag)
        .map_err(|_| AuthError::BadSignature)?;
    String::from_utf8(payload).map_err(|_| AuthError::Malformed)
}

/// A token's payload bytes, NOT checked: only to tell kinds of token apart
/// before the one that fits verifies it.
pub fn unverified_payload(token: &str) -> Result<Vec<u8>, AuthError> {
    let (payload, _) = token.split_once('.').ok_or(AuthError::Malformed)?;
    URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::Malformed)
}

/// Signs a token for `name`, valid until unix time `expires` (seconds).
pub fn mint(secret: &AuthSecret, name: &str, expires: u64) -> Result<String, AuthError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(AuthError::BadName);
    }
    Ok(seal(secret, &format!("{expires}:{name}")))
}

/// Checks a token's signature and expiry at unix time `now` (seconds).
pub fn verify(secret: &AuthSecret, token: &str, now: u64) -> Result<JoinClaims, AuthError> {
    let payload = open(secret, token)?;
    let (expires, name) = payload.split_once(':').ok_or(AuthError::Malformed)?;
    let expires: u64 = expires.parse().map_err(|_| AuthError::Malformed)?;
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(AuthError::BadName);
    }
    if now >= expires {
        return Err(AuthError::Expired);
    }
    Ok(JoinClaims {
        name: name.to_string(),
        expires,
    })
}

/// Checks the token of a `Hello` (if the server has a secret) and returns the name
/// the player joins with: the token's identity, which `Hello.name` must match if
/// it is given. Without a secret the server is open and `Hello.name` is used as is.
pub fn admit(
    secret: Option<&AuthSecret>,
    hello_name: Option<String>,
    token: Option<&str>,
    now: u64,
) -> Result<Option<String>, AuthError> {
    let Some(secret) = secret else {
        return Ok(hello_name);
    };
    let claims = verify(secret, token.ok_or(AuthError::Missing)?, now)?;
    if hello_name.as_ref().is_some_and(|n| *n != claims.name) {
        return Err(AuthError::NameMismatch);
    }
    Ok(Some(claims.name))
}

/// The current unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    unix_now_ms() / 1000
}

/// The current unix time in milliseconds (0 if the clock is before 1970).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> AuthSecret {
        "0123456789abcdef-test-secret".parse().unwrap()
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let t = mint(&secret(), "ada:1", 1_000).unwrap();
        assert!(t.len() < 100, "{t}");
        let c = verify(&secret(), &t, 999).unwrap();
        assert_eq!((c.name.as_str(), c.expires), ("ada:1", 1_000));
        assert_eq!(verify(&secret(), &t, 1_000), Err(AuthError::Expired));
    }

    #[test]
    fn forged_altered_and_foreign_tokens_fail() {
        let t = mint(&secret(), "ada", 1_000).unwrap();
        let other: AuthSecret = "another-secret-of-16+".parse().unwrap();
        assert_eq!(verify(&other, &t, 0), Err(AuthError::BadSignature));
        // Same MAC, payload changed to another identity / a later expiry.
        let (_, tag) = t.split_once('.').unwrap();
        for payload in ["1000:eve", "9999999999:ada"] {
            let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(payload));
            assert_eq!(verify(&secret(), &forged, 0), Err(AuthError::BadSignature));
        }
        for bad in ["", "abc", "a.b.c", "!!!.???", &"x".repeat(600)] {
            assert!(verify(&secret(), bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn admit_enforces_identity_only_with_a_secret() {
        let s = secret();
        let t = mint(&s, "ada", 100).unwrap();
        assert_eq!(admit(None, Some("x".into()), None, 0), Ok(Some("x".into())));
        assert_eq!(admit(Some(&s), None, None, 0), Err(AuthError::Missing));
        assert_eq!(admit(Some(&s), None, Some(&t), 0), Ok(Some("ada".into())));
        assert_eq!(
            admit(Some(&s), Some("ada".into()), Some(&t), 0),
            Ok(Some("ada".into()))
        );
        assert_eq!(
            admit(Some(&s), Some("eve".into()), Some(&t), 0),
            Err(AuthError::NameMismatch)
        );
    }

    #[test]
    fn secrets_are_long_enough_and_never_printed() {
        assert_eq!("short".parse::<AuthSecret>(), Err(AuthError::WeakSecret));
        assert!(!format!("{:?}", secret()).contains("0123"));
        assert_eq!(mint(&secret(), "", 1), Err(AuthError::BadName));
        assert_eq!(mint(&secret(), &"n".repeat(33), 1), Err(AuthError::BadName));
    }
}
