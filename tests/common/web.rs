//! The JavaScript client's tools for tests: `node` runs with a time limit in
//! `clients/web`, its dev dependencies (`npm ci`) and Debian's chromium.
//! Missing tools fail with a message saying what to install; never a silent
//! skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bound for one node run; the suites take a few seconds.
pub const NODE_LIMIT: Duration = Duration::from_secs(90);

pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/web")
}

/// Runs `program args` in `clients/web`, killing it after `limit`.
pub fn run(program: &str, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(web_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): install Node.js 18+ with npm to test the web client"
            )
        });
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait for child") {
            Some(_) => break,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "`{program} {}` took more than {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    child.wait_with_output().expect("collect output")
}

/// The chromium binary the browser test drives: `CHROMIUM_PATH` or Debian's.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "chromium not found at {}: the browser test of the web demo needs it. \
         Run `cargo xtask test` (it installs Debian's package), install it yourself \
         (`apt-get install -y --no-install-recommends chromium`) \
         or point CHROMIUM_PATH at a Chromium binary",
        path.display()
    );
    path
}

/// Installs the dev dependencies (`npm ci`) once, if `node_modules` is missing.
pub fn ensure_node_modules() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    if !web_dir().join("node_modules/playwright-core").is_dir() {
        let out = run("npm", &["ci", "--no-audit", "--no-fund"], NODE_LIMIT);
        assert_success("npm ci in clients/web", &out);
    }
    *done = true;
}

/// Asserts `out` is a success (printing its output if not) and shows the last
/// lines of its stdout (with --nocapture).
pub fn assert_success(what: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // Shown with --nocapture; kept short.
    let lines: Vec<&str> = stdout.lines().collect();
    let tail = &lines[lines.len().saturating_sub(12)..];
    eprintln!("{what}:\n{}", tail.join("\n"));
}

/// Where a browser test saves screenshot `name` (in the target directory); any
/// old one is removed.
pub fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&target).expect("create the target dir");
    let path = target.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Runs a browser driver (`node e2e/<script> args` in `clients/web`) on a
/// blocking thread and fails the test unless it succeeds.
pub async fn run_driver(script: &str, args: Vec<String>) {
    let what = format!("browser e2e (node {script})");
    let mut all = vec![script.to_string()];
    all.extend(args);
    let out = tokio::task::spawn_blocking(move || {
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run("node", &all, NODE_LIMIT)
    })
    .await
    .expect("browser task");
    assert_success(&what, &out);
}

/// Fails the test unless `path` holds a real PNG screenshot.
pub fn assert_screenshot(path: &Path) {
    let png = std::fs::read(path).expect("the screenshot was saved");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} is not a real screenshot",
        path.display()
    );
}
