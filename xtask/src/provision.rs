//! What the test suite needs beyond Rust, and how it gets installed: one
//! declarative table of Debian packages ([`DEBIAN`]) and the web client's npm
//! dependencies. Everything is installed only when missing, so a second run does
//! nothing; what cannot be installed here fails with the exact command to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// One program the suite runs, the Debian package that provides it, and who
/// needs it (shown when it is installed or missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebianTool {
    /// The command the tests start (looked up on `PATH`, `/usr/sbin` and `/sbin`).
    pub command: &'static str,
    /// The Debian package to install when it is missing.
    pub package: &'static str,
    /// An environment variable that may point at the program instead.
    pub path_env: Option<&'static str>,
    /// Which tests need it.
    pub needed_by: &'static str,
}

/// Every Debian package the suite needs. Later issues extend this table; nothing
/// else installs system packages.
pub const DEBIAN: &[DebianTool] = &[
    DebianTool {
        command: "node",
        package: "nodejs",
        path_env: None,
        needed_by: "tests/web_client.rs: the JS client's node --test suite, tsc, the browser driver",
    },
    DebianTool {
        command: "npm",
        package: "npm",
        path_env: None,
        needed_by: "npm ci in clients/web",
    },
    DebianTool {
        command: "chromium",
        package: "chromium",
        path_env: Some("CHROMIUM_PATH"),
        needed_by: "tests/web_client.rs: the demo page played in a headless browser",
    },
    DebianTool {
        command: "redis-server",
        package: "redis-server",
        path_env: None,
        needed_by: "fleet tests: a real Redis as the room directory",
    },
    DebianTool {
        command: "nginx",
        package: "nginx",
        path_env: None,
        needed_by: "fleet tests: sticky WebSocket routing through a real nginx",
    },
];

/// Directories searched besides `PATH`: root's programs (nginx) live in sbin,
/// which an unprivileged `PATH` often lacks.
const SBIN: &[&str] = &["/usr/sbin", "/sbin"];

/// Where `tool` is installed, if it is.
pub fn locate(tool: &DebianTool) -> Option<PathBuf> {
    if let Some(path) = tool.path_env.and_then(std::env::var_os) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(tool.command))
        .find(|candidate| candidate.is_file())
}

/// The tools of `table` that are not installed.
pub fn missing(table: &[DebianTool]) -> Vec<DebianTool> {
    table
        .iter()
        .filter(|t| locate(t).is_none())
        .copied()
        .collect()
}

/// The one command that installs `tools` on Debian.
pub fn install_command(tools: &[DebianTool]) -> String {
    let packages: Vec<&str> = tools.iter().map(|t| t.package).collect();
    format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    )
}

/// Installs the missing Debian packages of [`DEBIAN`] with apt-get (as root), or
/// fails saying exactly what to install.
pub fn debian() -> Result<()> {
    let absent = missing(DEBIAN);
    if absent.is_empty() {
        return Ok(());
    }
    for tool in &absent {
        eprintln!(
            "xtask: missing `{}` (Debian package {}), needed by {}",
            tool.command, tool.package, tool.needed_by
        );
    }
    let command = install_command(&absent);
    if let Err(why) = can_apt() {
        bail!(
            "the test suite needs programs that are not installed and {why}.\n\
             Install them (as root), then run `cargo xtask test` again:\n    {command}"
        );
    }
    eprintln!("xtask: {command}");
    run(Command::new("apt-get").arg("update"), "apt-get update")?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(absent.iter().map(|t| t.package))
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut install, "apt-get install")?;
    let still = missing(&absent);
    if !still.is_empty() {
        let names: Vec<&str> = still.iter().map(|t| t.command).collect();
        bail!(
            "apt-get installed the packages but {} still cannot be found on PATH, /usr/sbin or /sbin",
            names.join(", ")
        );
    }
    Ok(())
}

/// Why apt-get cannot be used here, if it cannot.
fn can_apt() -> std::result::Result<(), &'static str> {
    if !Path::new("/usr/bin/apt-get").is_file() {
        return Err("this is not a Debian-like system (no apt-get)");
    }
    let uid = Command::new("id").arg("-u").output();
    match uid {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "0" => Ok(()),
        _ => Err("installing them needs root"),
    }
}

/// Copy of the lock file that `npm ci` last installed, inside `node_modules`.
const NPM_STAMP: &str = ".ticksync-installed-package-lock.json";

/// Whether `web`'s `node_modules` is missing or was installed from another
/// `package-lock.json` than the current one.
pub fn npm_stale(web: &Path) -> Result<bool> {
    let lock = std::fs::read(web.join("package-lock.json"))
        .with_context(|| format!("reading {}/package-lock.json", web.display()))?;
    let installed = std::fs::read(web.join("node_modules").join(NPM_STAMP)).ok();
    Ok(installed.as_deref() != Some(lock.as_slice()))
}

/// Runs `npm ci` in `web` when its dependencies are missing or stale, and
/// records which lock file it installed.
pub fn npm(web: &Path) -> Result<()> {
    if !npm_stale(web)? {
        return Ok(());
    }
    eprintln!(
        "xtask: npm ci in {} (node_modules missing or older than package-lock.json)",
        web.display()
    );
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(web),
        "npm ci",
    )?;
    std::fs::copy(
        web.join("package-lock.json"),
        web.join("node_modules").join(NPM_STAMP),
    )
    .context("recording the installed package-lock.json")?;
    Ok(())
}

/// Runs `cmd` with inherited output; fails unless it exits 0.
pub fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_command_and_package_once() {
        for (i, a) in DEBIAN.iter().enumerate() {
            for b in &DEBIAN[i + 1..] {
                assert_ne!(a.command, b.command);
                assert_ne!(a.package, b.package);
            }
        }
        for tool in ["chromium", "node", "npm", "redis-server", "nginx"] {
            assert!(DEBIAN.iter().any(|t| t.command == tool), "{tool}");
        }
    }

    #[test]
    fn finds_programs_on_the_path_and_misses_absent_ones() {
        let sh = DebianTool {
            command: "sh",
            package: "dash",
            path_env: None,
            needed_by: "",
        };
        let absent = DebianTool {
            command: "ticksync-no-such-program",
            package: "ticksync-no-such-package",
            path_env: None,
            needed_by: "",
        };
        assert!(locate(&sh).is_some());
        assert_eq!(missing(&[sh, absent]), [absent]);
        assert_eq!(
            install_command(&[absent]),
            "apt-get update && apt-get install -y --no-install-recommends ticksync-no-such-package"
        );
    }

    #[test]
    fn node_modules_are_stale_until_installed_from_the_current_lock_file() {
        let dir = std::env::temp_dir().join(format!("xtask-npm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("node_modules")).expect("mkdir");
        std::fs::write(dir.join("package-lock.json"), b"{\"v\":1}").expect("write lock");
        assert!(npm_stale(&dir).expect("check"), "never installed");
        std::fs::write(dir.join("node_modules").join(NPM_STAMP), b"{\"v\":1}").expect("stamp");
        assert!(!npm_stale(&dir).expect("check"), "installed from this lock");
        std::fs::write(dir.join("package-lock.json"), b"{\"v\":2}").expect("write lock");
        assert!(npm_stale(&dir).expect("check"), "the lock file changed");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
