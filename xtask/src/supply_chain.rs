//! Supply-chain checks (`cargo xtask supply-chain`, a step of `.ci/run`):
//!
//! - `cargo deny check licenses bans sources` against `deny.toml`, with
//!   cargo-deny [`CARGO_DENY`] installed from crates.io when missing;
//! - the RustSec advisories, where a database is at hand: fetched with
//!   `TICKSYNC_ADVISORIES=fetch` (a machine that reaches the database's git
//!   repository), or a copy already in cargo-deny's database directory used
//!   offline. Without either it says plainly that advisories are not checked
//!   here (the package registries this project's machines reach distribute no
//!   copy of the database);
//! - `npm audit` of the web client's (dev) dependencies, failing on high or
//!   critical, where the npm registry answers audit requests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::provision::run;

/// The cargo-deny version the checks are written for (pinned: a new release may
/// add lints that fail an unchanged tree).
pub const CARGO_DENY: &str = "0.20.2";

/// Runs every check; the first failing one stops with its reason.
pub fn check(root: &Path) -> Result<()> {
    ensure_cargo_deny()?;
    run(
        cargo_deny(root).args(["check", "licenses", "bans", "sources"]),
        "cargo deny check licenses bans sources",
    )?;
    advisories(root)?;
    npm_audit(&root.join("clients/web"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo deny --locked` in the workspace root (the lock file is the truth).
fn cargo_deny(root: &Path) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(root).args(["deny", "--locked"]);
    cmd
}

/// The installed cargo-deny's version, if any.
fn installed_cargo_deny() -> Option<String> {
    let out = cargo().args(["deny", "--version"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.split_whitespace().nth(1).map(str::to_owned))
        .flatten()
}

/// Installs cargo-deny [`CARGO_DENY`] unless exactly that version is there.
fn ensure_cargo_deny() -> Result<()> {
    match installed_cargo_deny() {
        Some(v) if v == CARGO_DENY => return Ok(()),
        Some(v) => eprintln!("xtask: cargo-deny {v} is installed; the checks need {CARGO_DENY}"),
        None => eprintln!("xtask: cargo-deny is not installed"),
    }
    eprintln!(
        "xtask: cargo install cargo-deny --version ={CARGO_DENY} --locked (once; a few minutes)"
    );
    run(
        cargo().args([
            "install",
            "cargo-deny",
            "--version",
            &format!("={CARGO_DENY}"),
            "--locked",
        ]),
        "cargo install cargo-deny",
    )
}

/// Where the advisories can come from on this machine.
#[derive(Debug, PartialEq, Eq)]
enum AdvisoryDb {
    /// `TICKSYNC_ADVISORIES=fetch`: cargo-deny fetches the database.
    Fetch,
    /// A database cargo-deny fetched before, used without the network.
    Local(PathBuf),
    /// None at hand.
    Unavailable,
}

/// cargo-deny's default database directory (`$CARGO_HOME/advisory-dbs`).
fn db_dir() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    Some(cargo_home.join("advisory-dbs"))
}

/// Decides from `TICKSYNC_ADVISORIES` and the database directory `dir`.
fn advisory_db(setting: Option<&str>, dir: Option<&Path>) -> AdvisoryDb {
    if setting == Some("fetch") {
        return AdvisoryDb::Fetch;
    }
    let local = dir
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("crates").is_dir());
    local.map_or(AdvisoryDb::Unavailable, AdvisoryDb::Local)
}

fn advisories(root: &Path) -> Result<()> {
    let setting = std::env::var("TICKSYNC_ADVISORIES").ok();
    match advisory_db(setting.as_deref(), db_dir().as_deref()) {
        AdvisoryDb::Fetch => run(
            cargo_deny(root).args(["check", "advisories"]),
            "cargo deny check advisories",
        ),
        AdvisoryDb::Local(db) => {
            eprintln!(
                "xtask: advisories from the local RustSec database {} (not refreshed: \
                 TICKSYNC_ADVISORIES=fetch refreshes it where the network allows)",
                db.display()
            );
            run(
                cargo_deny(root).args(["check", "--disable-fetch", "advisories"]),
                "cargo deny check advisories (offline)",
            )
        }
        AdvisoryDb::Unavailable => {
            eprintln!(
                "xtask: advisories NOT checked here: no RustSec database on this machine, and \
                 it reaches package registries only, none of which distributes one. Run \
                 `TICKSYNC_ADVISORIES=fetch cargo xtask supply-chain` where the database's git \
                 repository is reachable (docs/OPERATIONS.md, \"Supply chain\"); a database \
                 fetched there and copied to {} is then used offline.",
                db_dir().map_or("$CARGO_HOME/advisory-dbs".into(), |d| d
                    .display()
                    .to_string())
            );
            Ok(())
        }
    }
}

/// What `npm audit --json` said.
#[derive(Debug, PartialEq, Eq)]
enum Audit {
    /// The registry answered: vulnerabilities of high or critical severity,
    /// and of any severity.
    Answered { high: u64, total: u64 },
    /// The registry did not answer the audit request (why).
    NoAnswer(String),
}

/// Reads `npm audit --json` output.
fn parse_audit(json: &str) -> Result<Audit> {
    let v: serde_json::Value =
        serde_json::from_str(json).context("npm audit --json printed no JSON")?;
    if let Some(counts) = v.pointer("/metadata/vulnerabilities") {
        let n = |k: &str| {
            counts
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        return Ok(Audit::Answered {
            high: n("high") + n("critical"),
            total: n("total"),
        });
    }
    if v.get("error").is_some() || v.get("statusCode").is_some() {
        let why = v
            .get("message")
            .or_else(|| v.pointer("/error/summary"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no reason given");
        return Ok(Audit::NoAnswer(why.to_owned()));
    }
    bail!("npm audit --json: neither a report nor an error: {json}")
}

fn npm_audit(web: &Path) -> Result<()> {
    let out = Command::new("npm")
        .args(["audit", "--json", "--audit-level=high"])
        .current_dir(web)
        .output()
        .context("running npm audit")?;
    match parse_audit(&String::from_utf8_lossy(&out.stdout))? {
        Audit::Answered { high: 0, total } => {
            eprintln!(
                "xtask: npm audit of clients/web: {total} vulnerabilities, none high or critical"
            );
            Ok(())
        }
        Audit::Answered { high, total } => bail!(
            "npm audit of clients/web: {high} high or critical vulnerabilities ({total} in all); \
             `npm audit` in clients/web lists them"
        ),
        Audit::NoAnswer(why) => {
            eprintln!(
                "xtask: npm audit NOT checked here: the registry did not answer the audit \
                 request ({why}); the same step fails on high severity where it answers"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_reports_errors_and_missing_answers_are_told_apart() {
        let report = r#"{"auditReportVersion":2,"vulnerabilities":{},"metadata":{"vulnerabilities":{"info":0,"low":1,"moderate":2,"high":1,"critical":1,"total":5}}}"#;
        assert_eq!(
            parse_audit(report).unwrap(),
            Audit::Answered { high: 2, total: 5 }
        );
        let clean = r#"{"metadata":{"vulnerabilities":{"high":0,"critical":0,"total":0}}}"#;
        assert_eq!(
            parse_audit(clean).unwrap(),
            Audit::Answered { high: 0, total: 0 }
        );
        // What this machine's registry answers: 405 to the bulk advisory POST.
        let refused = r#"{"message":"405 Method Not Allowed - POST https://registry.example/-/npm/v1/security/advisories/bulk","statusCode":405,"error":{"summary":"","detail":""}}"#;
        assert!(
            matches!(parse_audit(refused).unwrap(), Audit::NoAnswer(m) if m.starts_with("405"))
        );
        assert!(parse_audit("not json").is_err());
        assert!(parse_audit("{}").is_err());
    }

    #[test]
    fn the_advisory_database_comes_from_the_setting_or_a_local_copy() {
        let dir = std::env::temp_dir().join(format!("xtask-advisory-dbs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(advisory_db(None, Some(&dir)), AdvisoryDb::Unavailable);
        assert_eq!(advisory_db(Some("fetch"), Some(&dir)), AdvisoryDb::Fetch);
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        assert_eq!(advisory_db(None, Some(&dir)), AdvisoryDb::Unavailable);
        let db = dir.join("github.com-2f857891b7f43c59");
        std::fs::create_dir_all(db.join("crates")).unwrap();
        assert_eq!(advisory_db(None, Some(&dir)), AdvisoryDb::Local(db));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
