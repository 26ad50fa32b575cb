//! The fleet's flags (`--redis` and the ones that only matter with it),
//! flattened into the server's [`crate::Config`].

use std::time::Duration;

use clap::Args;

use crate::auth::AuthSecret;

/// How this process joins a fleet. Without `--redis` none of it applies and
/// the process runs alone, as before.
#[derive(Debug, Clone, Args)]
pub struct FleetConfig {
    /// Redis URL of the fleet directory (`redis://host:port/db`): makes this
    /// process a fleet member. Without it the process runs alone.
    #[arg(long = "redis", env = "TICKSYNC_REDIS")]
    pub redis: Option<String>,

    /// This member's id in the fleet: 1-32 of a-z, 0-9 and `-`, starting with
    /// a letter or digit; the nginx routes name it (`/m/<id>/`). Default: a
    /// random `m-xxxxxxxx`.
    #[arg(long, env = "TICKSYNC_MEMBER_ID")]
    pub member_id: Option<String>,

    /// The base URL players reach this member at (http(s):// or ws(s)://), e.g.
    /// `https://play.example.com/m/m1` behind nginx. Matchmaking hands out
    /// `<public-url>/ws?room=...` (ws/wss). Default: `http://<bound address>`.
    #[arg(long, env = "TICKSYNC_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Secret (at least 16 bytes) shared by the fleet's members: seat tokens
    /// signed by one member are checked by another. Needed with --redis unless
    /// --auth-secret (then also shared) is set.
    #[arg(long, env = "TICKSYNC_FLEET_SECRET", hide_env_values = true)]
    pub fleet_secret: Option<AuthSecret>,

    /// Lifetime of this member's entries in Redis: a member that stops
    /// heartbeating (killed, cut off) is forgotten, with its rooms, after this
    /// long. Heartbeats run every fifth of it.
    #[arg(long, env = "TICKSYNC_FLEET_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub fleet_ttl: Duration,

    /// Time a matchmake waits for another member to open a room for it before
    /// trying the next least-loaded member.
    #[arg(long, env = "TICKSYNC_FLEET_CREATE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub fleet_create_timeout: Duration,

    /// Prefix of every key in Redis (several fleets can share one Redis).
    #[arg(long, env = "TICKSYNC_REDIS_PREFIX", default_value = "ticksync:")]
    pub redis_prefix: String,
}

impl FleetConfig {
    /// Checks the fleet flags; the message says what to fix.
    pub fn validate(&self, auth_secret: Option<&AuthSecret>) -> Result<(), String> {
        let Some(url) = &self.redis else {
            for (name, set) in [
                ("--member-id", self.member_id.is_some()),
                ("--public-url", self.public_url.is_some()),
                ("--fleet-secret", self.fleet_secret.is_some()),
            ] {
                if set {
                    return Err(format!("{name} needs --redis"));
                }
            }
            return Ok(());
        };
        if !url.starts_with("redis://") {
            return Err(format!("--redis must be a redis:// URL, got {url:?}"));
        }
        redis::Client::open(url.as_str()).map_err(|e| format!("--redis {url:?}: {e}"))?;
        if let Some(id) = &self.member_id {
            valid_member_id(id)?;
        }
        if let Some(u) = &self.public_url
            && !["http://", "https://", "ws://", "wss://"]
                .iter()
                .any(|s| u.starts_with(s))
        {
            return Err(format!(
                "--public-url must start with http(s):// or ws(s)://, got {u:?}"
            ));
        }
        if self.fleet_secret.is_none() && auth_secret.is_none() {
            return Err(
                "--redis needs --fleet-secret (or --auth-secret): members check each other's seat tokens"
                    .into(),
            );
        }
        if self.fleet_ttl < Duration::from_secs(1) {
            return Err(format!(
                "--fleet-ttl must be at least 1s, got {:?}",
                self.fleet_ttl
            ));
        }
        if self.fleet_create_timeout.is_zero() {
            return Err("--fleet-create-timeout must be greater than zero".into());
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.len() > 64 {
            return Err("--redis-prefix must be 1-64 bytes".into());
        }
        Ok(())
    }

    /// The secret seat tokens are signed with across the fleet.
    pub fn seat_secret<'a>(
        &'a self,
        auth_secret: Option<&'a AuthSecret>,
    ) -> Option<&'a AuthSecret> {
        self.fleet_secret.as_ref().or(auth_secret)
    }

    /// This member's id: `--member-id`, or a random one.
    pub fn member_id(&self) -> String {
        self.member_id
            .clone()
            .unwrap_or_else(|| format!("m-{:08x}", rand::random::<u32>()))
    }
}

/// Checks a member id: nginx routes and Redis keys carry it verbatim.
pub fn valid_member_id(id: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--member-id must be 1-32 of a-z, 0-9 and '-', not starting with '-', got {id:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        fleet: FleetConfig,
    }

    fn parse(args: &[&str]) -> FleetConfig {
        Cli::parse_from(std::iter::once("x").chain(args.iter().copied())).fleet
    }

    #[test]
    fn without_redis_nothing_is_needed_and_fleet_flags_are_refused() {
        assert_eq!(parse(&[]).validate(None), Ok(()));
        let e = parse(&["--member-id", "m1"]).validate(None).unwrap_err();
        assert!(e.contains("--member-id needs --redis"), "{e}");
    }

    #[test]
    fn a_member_needs_a_shared_secret_and_sane_values() {
        let e = parse(&["--redis", "redis://127.0.0.1/"])
            .validate(None)
            .unwrap_err();
        assert!(e.contains("--fleet-secret"), "{e}");
        let ok = [
            "--redis",
            "redis://127.0.0.1/",
            "--fleet-secret",
            "0123456789abcdef",
        ];
        assert_eq!(parse(&ok).validate(None), Ok(()));
        let with = |more: &[&str]| {
            let mut args = ok.to_vec();
            args.extend_from_slice(more);
            parse(&args).validate(None)
        };
        assert!(
            with(&["--member-id", "M1"])
                .unwrap_err()
                .contains("--member-id")
        );
        assert!(with(&["--member-id=-m"]).is_err());
        assert_eq!(with(&["--member-id", "eu-1"]), Ok(()));
        assert!(
            with(&["--public-url", "tcp://x"])
                .unwrap_err()
                .contains("--public-url")
        );
        assert!(
            with(&["--fleet-ttl", "500ms"])
                .unwrap_err()
                .contains("--fleet-ttl")
        );
        let e = parse(&["--redis", "not a url", "--fleet-secret", "0123456789abcdef"])
            .validate(None)
            .unwrap_err();
        assert!(e.contains("--redis"), "{e}");
        assert!(parse(&[]).member_id().starts_with("m-"));
    }
}
