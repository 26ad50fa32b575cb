//! Real external services for the fleet tests: a `redis-server` and an `nginx`,
//! each a child process on a free 127.0.0.1 port with its own temporary
//! directory and configuration, stopped (and its directory removed) on drop.
//!
//! Both are Debian packages that `cargo xtask test` installs when missing
//! (xtask/src/provision.rs). A missing program fails the test with the package
//! to install: a fleet test never skips itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bins::{TempDir, wait_with_limit};

/// How long a service may take to start answering.
const START_LIMIT: Duration = Duration::from_secs(15);

/// Directories searched besides `PATH` (nginx lives in `/usr/sbin`, which an
/// unprivileged `PATH` often lacks); the same rule as xtask's provisioning.
const SBIN: &[&str] = &["/usr/sbin", "/sbin"];

/// The path of `command`, or a failure naming the Debian package to install.
pub fn require(command: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{command}` is not installed: the fleet tests need the Debian package \
                 `{package}`. `cargo xtask test` installs it; or run \
                 `apt-get install -y {package}` as root"
            )
        })
}

/// A free TCP port on 127.0.0.1 (bound and released: a service started right
/// after gets it unless another process races for it, which the callers retry).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A child process killed (and reaped) on drop.
struct Proc(Option<Child>);

impl Proc {
    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `redis-server` on 127.0.0.1 with no persistence (`--save ""`): a restart
/// starts empty, as after a crash of a cache-only Redis.
pub struct RedisServer {
    proc: Proc,
    port: u16,
    binary: PathBuf,
    dir: TempDir,
}

impl RedisServer {
    /// Starts one on a free port; fails the test if it is not installed or does
    /// not answer `PING` within 15 s.
    pub fn start() -> RedisServer {
        let binary = require("redis-server", "redis-server");
        let mut redis = RedisServer {
            proc: Proc(None),
            port: 0,
            binary,
            dir: TempDir::new("redis"),
        };
        for _ in 0..5 {
            redis.port = free_port();
            if redis.launch() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 5 free ports; see its log above");
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL): every connection drops, every key is lost.
    pub fn kill(&mut self) {
        self.proc.stop();
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.proc.stop();
        let deadline = Instant::now() + START_LIMIT;
        // The port may linger a moment after the kill.
        while !self.launch() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends one command in RESP (inline form) and returns the raw reply.
    pub fn command(&self, args: &[&str]) -> String {
        redis_command(self.port, args).unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    fn launch(&mut self) -> bool {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.proc = Proc(Some(child));
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if !self.proc.running() {
                return false;
            }
            if redis_command(self.port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within {START_LIMIT:?}",
            self.port
        );
    }
}

/// One Redis command over a fresh connection; the reply's raw RESP text.
pub fn redis_command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes())?;
    let mut buf = vec![0; 64 * 1024];
    let n = stream.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// An `nginx` (master in the foreground) on a free 127.0.0.1 port, with the
/// project's deploy/nginx/ticksync.conf and the given member routes.
pub struct Nginx {
    proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: TempDir,
}

/// The shipped routing configuration (the file a deployment includes).
pub fn shipped_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/ticksync.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The listen line of the shipped configuration, replaced by the test's port.
pub const SHIPPED_LISTEN: &str = "listen 127.0.0.1:8080;";

impl Nginx {
    /// Starts nginx with deploy/nginx/ticksync.conf (its listen address replaced
    /// by a free port) and `members`: `(member id, its address)`, written as
    /// deploy/nginx/members.conf.example shows.
    pub fn start(members: &[(String, SocketAddr)]) -> Nginx {
        for attempt in 0..5 {
            match Nginx::launch(free_port(), members) {
                Ok(nginx) => return nginx,
                Err(log) => eprintln!("nginx attempt {attempt} failed:\n{log}"),
            }
        }
        panic!("nginx did not start on any of 5 free ports; see its error logs above");
    }

    /// Starts it on `port`, which the caller chose beforehand (from
    /// [`free_port`]) because the members behind it must know their public
    /// URL (`http://127.0.0.1:PORT/m/<id>`) before nginx knows their addresses.
    pub fn start_on(port: u16, members: &[(String, SocketAddr)]) -> Nginx {
        Nginx::launch(port, members)
            .unwrap_or_else(|log| panic!("nginx did not start on port {port}:\n{log}"))
    }

    /// One start on `port`; `Err` with its error log when it exits at once
    /// (e.g. the port was taken meanwhile).
    fn launch(port: u16, members: &[(String, SocketAddr)]) -> Result<Nginx, String> {
        let binary = require("nginx", "nginx");
        let shipped = shipped_config();
        assert_eq!(
            shipped.matches(SHIPPED_LISTEN).count(),
            1,
            "deploy/nginx/ticksync.conf must contain `{SHIPPED_LISTEN}` once"
        );
        let dir = TempDir::new("nginx");
        let conf = shipped.replace(SHIPPED_LISTEN, &format!("listen 127.0.0.1:{port};"));
        std::fs::write(dir.join("ticksync.conf"), conf).expect("write ticksync.conf");
        std::fs::write(dir.join("members.conf"), members_conf(members))
            .expect("write members.conf");
        std::fs::write(dir.join("nginx.conf"), main_conf(&dir.0)).expect("write nginx.conf");
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut nginx = Nginx {
            proc: Proc(Some(child)),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        if nginx.wait_listening() {
            Ok(nginx)
        } else {
            Err(nginx.error_log())
        }
    }

    /// `http://ADDR`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://ADDR`.
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    /// Stops it (SIGQUIT: graceful) within 10 s, else kills it.
    pub fn stop(&mut self) {
        if let Some(child) = self.proc.0.as_mut() {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            wait_with_limit(child, "nginx after SIGQUIT", Duration::from_secs(10));
        }
        self.proc.stop();
    }

    fn wait_listening(&mut self) -> bool {
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if !self.proc.running() {
                return false;
            }
            if TcpStream::connect(self.addr).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "nginx did not listen on {} within {START_LIMIT:?}",
            self.addr
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The member routes in the format of deploy/nginx/members.conf.example.
pub fn members_conf(members: &[(String, SocketAddr)]) -> String {
    let mut upstreams = String::new();
    let mut map = String::from("map $ticksync_member $ticksync_upstream {\n    default \"\";\n");
    let mut any = String::from("upstream ticksync_any {\n");
    for (id, addr) in members {
        upstreams.push_str(&format!(
            "upstream ticksync_member_{id} {{\n    server {addr};\n}}\n"
        ));
        map.push_str(&format!("    {id} ticksync_member_{id};\n"));
        any.push_str(&format!("    server {addr};\n"));
    }
    map.push_str("}\n");
    any.push_str("}\n");
    format!("{upstreams}{map}{any}")
}

/// The test's main nginx.conf: everything in `dir`, in the foreground.
fn main_conf(dir: &Path) -> String {
    let d = dir.display();
    // Workers of a root master would run as `nobody`; keep them as the test's
    // user so they can use the temp directories.
    let user = if is_root() { "user root;\n" } else { "" };
    format!(
        "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n\
         \x20   fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n    scgi_temp_path {d}/tmp/scgi;\n\
         \x20   include {d}/members.conf;\n    include {d}/ticksync.conf;\n}}\n"
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
