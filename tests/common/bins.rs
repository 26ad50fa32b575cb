//! The workspace's binaries as child processes: where they are, building them
//! (a test of the root package cannot use `env!("CARGO_BIN_EXE_...")` for another
//! package's binaries), a `ticksync-server` process on 127.0.0.1:0, a
//! `ticksync-bot` run with its JSON report, and running a command with a time
//! limit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The server binary's name.
pub const SERVER: &str = "ticksync-server";
/// The bot binary's name.
pub const BOT: &str = "ticksync-bot";

/// The directory of the running profile's artifacts: the test executable lives in
/// `<target>/<profile>/deps/`, the binaries in `<target>/<profile>/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let deps = exe.parent().expect("the test executable's directory");
    deps.parent()
        .expect("the profile directory above deps/")
        .to_path_buf()
}

/// The path of a workspace binary in the running profile.
pub fn bin_path(name: &str) -> PathBuf {
    profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `cargo build <args>` in the profile and target directory this test runs
/// from; `Err` with cargo's output when it fails.
fn cargo_build(args: &[&str]) -> Result<(), String> {
    let dir = profile_dir();
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name");
    let target = dir.parent().expect("target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .args(args)
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target);
    // The `debug` directory belongs to the `dev` (and `test`) profile.
    if profile != "debug" {
        cmd.args(["--profile", profile]);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_crate_var) {
            cmd.env_remove(name);
        }
    }
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo build {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether cargo set `name` for the crate it runs (this test executable).
///
/// They must not reach the nested cargo: a build script's
/// `rerun-if-env-changed` is checked against cargo's own environment (ring's
/// names `CARGO_MANIFEST_DIR` and `CARGO_PKG_NAME`), so passing them on made
/// every nested build rebuild ring, rustls and both binaries, and the next
/// `cargo test` rebuild them back. `cargo xtask test` strips the same set from
/// the suite's cargo (xtask/src/main.rs).
fn is_crate_var(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_")
}

/// Builds the server and bot binaries once per test process, in the profile and
/// target directory this test runs from, and returns their paths.
///
/// Always runs cargo (a no-op when they are fresh), so the test never runs a
/// stale binary; `cargo test --workspace` has built them already, `cargo test
/// --test e2e_binaries` may not have.
pub fn built_binaries() -> (PathBuf, PathBuf) {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    // `--workspace`, not `-p`: cargo resolves features over the packages it is
    // asked for, so a `-p` build gets other features than `cargo test --workspace`
    // and rebuilds (then overwrites) both binaries on every run.
    let result = BUILT.get_or_init(|| cargo_build(&["--workspace", "--bins"]));
    if let Err(e) = result {
        panic!("{e}");
    }
    let (server, bot) = (bin_path(SERVER), bin_path(BOT));
    assert!(
        server.exists(),
        "{} missing after the build",
        server.display()
    );
    assert!(bot.exists(), "{} missing after the build", bot.display());
    (server, bot)
}

/// Builds example `name` (a no-op when fresh; with the workspace's features, as
/// for the binaries) and returns its path.
pub fn built_example(name: &str) -> PathBuf {
    if let Err(e) = cargo_build(&["--workspace", "--example", name]) {
        panic!("{e}");
    }
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} missing after the build", path.display());
    path
}

/// A fresh, empty directory for one test's files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `ticksync-e2e-<label>-<pid>-<nanos>` in the system temp directory.
    pub fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ticksync-e2e-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for a child for at most `limit`; kills it and fails the test beyond.
pub fn wait_with_limit(child: &mut Child, what: &str, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `ticksync-server` child process listening on 127.0.0.1 (a free port). Killed
/// on drop if still running.
pub struct ServerProcess {
    child: Child,
    /// The address from its `listening on http://ADDR` (or `https://`) log line.
    pub addr: SocketAddr,
    /// Every line it wrote to stdout so far (its logs).
    pub log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `binary --bind 127.0.0.1:0 <args>` with info logs on stdout, and
    /// waits (at most `limit`) for the line that names the bound address.
    pub fn start(binary: &Path, args: &[&str], limit: Duration) -> ServerProcess {
        ServerProcess::start_with_env(binary, args, &[], limit)
    }

    /// [`ServerProcess::start`] with extra environment variables.
    pub fn start_with_env(
        binary: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
    ) -> ServerProcess {
        let mut child = Command::new(binary)
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env_remove("TICKSYNC_LOG_JSON")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        // Keeps draining stdout for the process's whole life so it never blocks
        // on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let addr = listening_addr(&line);
                // Stored before the address is announced, so a caller that
                // reads the log right after `start` returns sees this line.
                lines.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(limit) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server logged no `listening on` line within {limit:?}; its output:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        ServerProcess { child, addr, log }
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Sends SIGTERM (via `kill -TERM`) and waits at most `limit` for the exit.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
        wait_with_limit(&mut self.child, "the server after SIGTERM", limit)
    }

    /// Waits at most `limit` for it to exit on its own.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        wait_with_limit(&mut self.child, "the server to exit", limit)
    }

    /// Its resident set size now, in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {path}"))
    }

    /// Its process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdout so far, one string.
    pub fn output(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `ticksync-bot` child process writing its JSON report (`--json`) into its
/// own temp dir. Killed on drop if still running.
pub struct BotProcess {
    child: Child,
    dir: TempDir,
}

impl BotProcess {
    /// Starts `bot` with `--url url`, `args`, `--no-progress` and `--json`.
    pub fn start(bot: &Path, url: &str, args: &[&str]) -> BotProcess {
        let dir = TempDir::new("bot");
        let file = |name: &str| std::fs::File::create(dir.join(name)).expect("bot output file");
        let child = Command::new(bot)
            .args(["--url", url])
            .args(args)
            .arg("--no-progress")
            .arg("--json")
            .arg(dir.join("report.json"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file("bot.stdout"))
            .stderr(file("bot.stderr"))
            .spawn()
            .expect("start the bot binary");
        BotProcess { child, dir }
    }

    /// Waits at most `limit` for the run to end; asserts it exited 0 and
    /// returns its JSON report.
    pub fn report(mut self, limit: Duration) -> serde_json::Value {
        let status = wait_with_limit(&mut self.child, "the bot binary", limit);
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        assert!(
            status.success(),
            "ticksync-bot failed ({status}):\nstdout:\n{}\nstderr:\n{}",
            read("bot.stdout"),
            read("bot.stderr")
        );
        serde_json::from_str(&read("report.json")).expect("the JSON report was written")
    }
}

/// A number of a bot's JSON report, by JSON pointer (`/rtt_ms/p99`).
pub fn report_number(report: &serde_json::Value, path: &str) -> f64 {
    report
        .pointer(path)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("report field {path} is not a number: {report:#}"))
}

/// A count of a bot's JSON report, by JSON pointer (`/desyncs`).
pub fn report_count(report: &serde_json::Value, path: &str) -> u64 {
    report
        .pointer(path)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("report field {path} is not a count: {report:#}"))
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in a `... listening on http://ADDR` (or `https://ADDR`) log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http")?..];
    let rest = &rest[rest.find("://")? + "://".len()..];
    rest.split_whitespace().next()?.parse().ok()
}
