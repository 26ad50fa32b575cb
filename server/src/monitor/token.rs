//! The operator's credential (`--admin-token`) and its check: what a request to
//! the monitor's JSON or the admin API must present as `Authorization: Bearer
//! <token>`.
//!
//! The comparison takes the same time whatever the presented bytes: both sides
//! are HMAC'd under a key drawn at start-up and the tags compared with `hmac`'s
//! constant-time check, so neither a matching prefix nor the length of the
//! configured token shows in the answer's timing.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::metrics::AdminRefusal;

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted admin token, in bytes.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// The admin token. Its `Debug` never shows it, so the config can be logged.
#[derive(Clone)]
pub struct AdminToken {
    key: [u8; 32],
    tag: [u8; 32],
}

/// The admin token is too short to resist guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the admin token must be at least {MIN_ADMIN_TOKEN_LEN} bytes")]
pub struct WeakAdminToken;

impl AdminToken {
    /// A token from its bytes; at least [`MIN_ADMIN_TOKEN_LEN`] of them.
    pub fn new(token: &[u8]) -> Result<AdminToken, WeakAdminToken> {
        if token.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(WeakAdminToken);
        }
        let key: [u8; 32] = rand::random();
        let tag = Self::mac(&key, token).finalize().into_bytes().into();
        Ok(AdminToken { key, tag })
    }

    fn mac(key: &[u8; 32], bytes: &[u8]) -> HmacSha256 {
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(bytes);
        mac
    }

    /// Whether `presented` is the token, in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        Self::mac(&self.key, presented)
            .verify_slice(&self.tag)
            .is_ok()
    }

    /// Checks an `Authorization` header value: `Bearer <token>` (the scheme
    /// case-insensitive, RFC 9110).
    pub fn check(&self, authorization: Option<&str>) -> Result<(), AdminRefusal> {
        let credential = authorization
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or(AdminRefusal::missing)?;
        if self.matches(credential.as_bytes()) {
            Ok(())
        } else {
            Err(AdminRefusal::invalid)
        }
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl FromStr for AdminToken {
    type Err = WeakAdminToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AdminToken::new(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "operator-token-0123456789";

    #[test]
    fn only_the_bearer_token_itself_passes() {
        let t: AdminToken = TOKEN.parse().unwrap();
        assert_eq!(t.check(Some(&format!("Bearer {TOKEN}"))), Ok(()));
        assert_eq!(t.check(Some(&format!("bearer  {TOKEN} "))), Ok(()));
        for missing in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer  "),
            Some(TOKEN),
        ] {
            assert_eq!(t.check(missing), Err(AdminRefusal::missing), "{missing:?}");
        }
        let prefix = &TOKEN[..TOKEN.len() - 1];
        for wrong in [
            format!("Basic {TOKEN}"),
            format!("Bearer {prefix}"),
            format!("Bearer {TOKEN}x"),
            "Bearer operator-token-0123456788".to_string(),
        ] {
            assert!(t.check(Some(&wrong)).is_err(), "{wrong}");
        }
    }

    #[test]
    fn tokens_are_long_enough_and_never_printed() {
        assert!("too-short".parse::<AdminToken>().is_err());
        let t: AdminToken = TOKEN.parse().unwrap();
        assert!(!format!("{t:?}").contains("operator"));
        // Each instance draws its own key: the tag of one says nothing of another.
        let u: AdminToken = TOKEN.parse().unwrap();
        assert_ne!(t.tag, u.tag);
        assert!(u.matches(TOKEN.as_bytes()));
    }
}
