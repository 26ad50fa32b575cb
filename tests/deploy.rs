//! The deployment files, checked against the workspace as far as a machine
//! without Docker or Kubernetes can: `deploy/agones/*.yaml` parse, name only
//! flags and `TICKSYNC_*` variables the server has, with values it accepts,
//! and agree with each other and with the server (counter names and
//! capacities, port, health period, drain time); the `Dockerfile` builds a
//! package and binary the workspace has, copies what exists, runs as a
//! non-root user, and its health check command answers for a running server
//! and fails once it is gone. Building the image and applying the manifests
//! to a cluster are not done here (docs/SCALING.md, "Tested against a
//! stand-in, not Kubernetes").

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::CommandFactory;
use clap::Parser;
use serde_json::Value;

use common::WAIT;
use common::bins::{ServerProcess, built_binaries, wait_with_limit};
use ticksync_server::Config;
use ticksync_server::agones::{PLAYERS, ROOMS};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One manifest of deploy/agones/, as JSON values.
fn manifest(name: &str) -> Value {
    let path = repo().join("deploy/agones").join(name);
    serde_yaml_ng::from_str(&read(&path)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer}"))
}

fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer at {pointer}"))
}

/// The server's config from a container's `args` and `env`, parsed and
/// validated the way the binary does. Each variable must be one a flag
/// reads; it is passed as that flag, so the process's own environment does
/// not leak in.
fn container_config(args: &[String], env: &[(String, String)]) -> Config {
    let command = Config::command();
    let mut argv = vec!["ticksync-server".to_string()];
    argv.extend(args.iter().cloned());
    for (name, value) in env {
        let arg = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
            .unwrap_or_else(|| panic!("{name} is no variable of the server"));
        let long = arg.get_long().expect("every flag has a long name");
        if arg.get_action().takes_values() {
            argv.push(format!("--{long}={value}"));
        } else if value == "true" {
            argv.push(format!("--{long}"));
        } else {
            assert_eq!(value, "false", "{name}: a switch is true or false");
        }
    }
    let config =
        Config::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"));
    if let Err(e) = config.validate() {
        panic!("{argv:?} is refused: {e}");
    }
    config
}

/// The fleet's one container: its config, and the fleet's counters.
struct Fleet {
    doc: Value,
    config: Config,
    counters: BTreeMap<String, i64>,
}

fn fleet() -> Fleet {
    let doc = manifest("fleet.yaml");
    assert_eq!(str_at(&doc, "/apiVersion"), "agones.dev/v1");
    assert_eq!(str_at(&doc, "/kind"), "Fleet");
    let containers = doc
        .pointer("/spec/template/spec/template/spec/containers")
        .and_then(Value::as_array)
        .expect("containers");
    assert_eq!(containers.len(), 1, "Agones takes the first container");
    let c = &containers[0];
    let args: Vec<String> = c["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().expect("arg").to_string())
                .collect()
        })
        .unwrap_or_default();
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| (str_at(e, "/name").into(), str_at(e, "/value").into()))
                .collect()
        })
        .unwrap_or_default();
    let config = container_config(&args, &env);
    let counters = doc
        .pointer("/spec/template/spec/counters")
        .and_then(Value::as_object)
        .expect("counters")
        .iter()
        .map(|(k, v)| (k.clone(), int_at(v, "/capacity")))
        .collect();
    Fleet {
        doc,
        config,
        counters,
    }
}

#[test]
fn the_fleet_runs_the_server_as_an_agones_game_server_with_matching_settings() {
    let f = fleet();
    let c = &f.config;
    assert!(c.agones.enabled, "the fleet's server needs --agones");
    // Reachable from outside the pod, on the declared container port.
    assert!(c.bind.ip().is_unspecified(), "bind {}", c.bind);
    let port = &f.doc["spec"]["template"]["spec"]["ports"][0];
    assert_eq!(int_at(port, "/containerPort"), i64::from(c.bind.port()));
    assert_eq!(str_at(port, "/protocol"), "TCP");
    // The counters the server updates, declared with its capacities.
    let expected = BTreeMap::from([
        (ROOMS.to_string(), c.max_rooms as i64),
        (PLAYERS.to_string(), c.max_players as i64),
    ]);
    assert_eq!(f.counters, expected);
    // At least two Health pings per period: one late ping fails nothing.
    let health = &f.doc["spec"]["template"]["spec"]["health"];
    assert_ne!(health["disabled"], Value::Bool(true));
    let period = Duration::from_secs(int_at(health, "/periodSeconds") as u64);
    assert!(
        period >= c.agones.health_interval * 2,
        "periodSeconds {period:?} vs --agones-health-interval {:?}",
        c.agones.health_interval
    );
    // The kubelet must not kill the process mid-drain.
    let grace = int_at(
        &f.doc,
        "/spec/template/spec/template/spec/terminationGracePeriodSeconds",
    );
    assert!(
        Duration::from_secs(grace as u64) > c.drain_timeout,
        "terminationGracePeriodSeconds {grace} vs --drain-timeout {:?}",
        c.drain_timeout
    );
    // The image of this version, run as the Dockerfile's user.
    let container = &f.doc["spec"]["template"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        str_at(container, "/image"),
        format!("ticksync-server:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        int_at(container, "/securityContext/runAsUser"),
        dockerfile().user_id()
    );
}

#[test]
fn the_autoscaler_and_the_allocation_use_the_fleets_counters() {
    let f = fleet();
    let fleet_name = str_at(&f.doc, "/metadata/name");

    let scaler = manifest("fleetautoscaler.yaml");
    assert_eq!(str_at(&scaler, "/apiVersion"), "autoscaling.agones.dev/v1");
    assert_eq!(str_at(&scaler, "/kind"), "FleetAutoscaler");
    assert_eq!(str_at(&scaler, "/spec/fleetName"), fleet_name);
    assert_eq!(str_at(&scaler, "/spec/policy/type"), "Counter");
    let key = str_at(&scaler, "/spec/policy/counter/key");
    assert_eq!(key, PLAYERS, "seats are what players need");
    let buffer = int_at(&scaler, "/spec/policy/counter/bufferSize");
    let min = int_at(&scaler, "/spec/policy/counter/minCapacity");
    let max = int_at(&scaler, "/spec/policy/counter/maxCapacity");
    // Agones' own validation of a Counter policy.
    assert!(
        0 < buffer && buffer <= min && min <= max,
        "{buffer} {min} {max}"
    );
    assert!(
        min >= f.counters[key],
        "minCapacity below one server's capacity"
    );

    let alloc = manifest("allocation.yaml");
    assert_eq!(str_at(&alloc, "/apiVersion"), "allocation.agones.dev/v1");
    assert_eq!(str_at(&alloc, "/kind"), "GameServerAllocation");
    let selectors = alloc["spec"]["selectors"].as_array().expect("selectors");
    let states: Vec<&str> = selectors
        .iter()
        .map(|s| str_at(s, "/gameServerState"))
        .collect();
    assert_eq!(states, ["Allocated", "Ready"], "busy servers first");
    for s in selectors {
        assert_eq!(str_at(s, "/matchLabels/agones.dev~1fleet"), fleet_name);
        for k in s["counters"].as_object().expect("counters").keys() {
            assert!(f.counters.contains_key(k), "unknown counter {k}");
        }
    }
    for p in alloc["spec"]["priorities"].as_array().expect("priorities") {
        assert!(f.counters.contains_key(str_at(p, "/key")));
    }
    // The server sets its counts itself: an allocation's increment would be
    // overwritten within a second.
    assert!(alloc["spec"].get("counters").is_none(), "no counterActions");
}

/// The Dockerfile's instructions (continuations joined), by keyword.
struct Dockerfile {
    lines: Vec<(String, String)>,
}

impl Dockerfile {
    fn all(&self, keyword: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
            .collect()
    }

    fn one(&self, keyword: &str) -> &str {
        match self.all(keyword)[..] {
            [one] => one,
            ref all => panic!("{keyword}: {all:?}"),
        }
    }

    /// The runtime user's uid (`USER uid:gid`).
    fn user_id(&self) -> i64 {
        let user = self.one("USER");
        let uid = user.split(':').next().unwrap_or_default();
        uid.parse()
            .unwrap_or_else(|_| panic!("USER {user}: a numeric uid, so runAsNonRoot can check it"))
    }
}

fn dockerfile() -> Dockerfile {
    let text = read(&repo().join("Dockerfile")).replace("\\\n", " ");
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, rest) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_ascii_uppercase(), rest.trim().to_string())
        })
        .collect();
    Dockerfile { lines }
}

/// `key = "value"` of a Cargo.toml.
fn toml_str(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn the_dockerfile_builds_the_workspaces_server_and_runs_it_unprivileged() {
    let d = dockerfile();
    // Build stage: a toolchain at least the workspace's rust-version, on the
    // Debian release the runtime image is made of (the same glibc).
    let workspace = read(&repo().join("Cargo.toml"));
    let needed = toml_str(&workspace, "rust-version");
    let arg = d.one("ARG");
    let rust = arg.strip_prefix("RUST_VERSION=").expect("ARG RUST_VERSION");
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().expect("n")).collect() };
    assert!(version(rust) >= version(&needed), "{rust} < {needed}");
    let froms = d.all("FROM");
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].starts_with("rust:${RUST_VERSION}-bookworm AS build"));
    assert!(froms[1].contains("distroless/cc-debian12"), "{}", froms[1]);

    // What it copies into the build exists (and the build context leaves
    // out the outputs).
    for copy in d.all("COPY").iter().filter(|c| !c.starts_with("--from")) {
        let parts: Vec<&str> = copy.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            assert!(repo().join(src).exists(), "COPY {src}: missing");
        }
    }
    let ignore = read(&repo().join(".dockerignore"));
    assert!(ignore.lines().any(|l| l.trim() == "target/"));

    // It builds the server package's binary and takes that one.
    let run = d.one("RUN");
    let server = read(&repo().join("server/Cargo.toml"));
    let package = toml_str(&server, "name");
    assert!(repo().join("server/src/main.rs").exists());
    assert!(run.contains("--locked"), "{run}");
    assert!(run.contains(&format!("--package {package} --bin {package}")));
    assert!(run.contains(&format!("target/release/{package} /out/{package}")));
    let binary = format!("/usr/local/bin/{package}");
    assert_eq!(
        d.all("COPY")
            .into_iter()
            .find(|c| c.starts_with("--from=build"))
            .expect("COPY --from=build"),
        format!("--from=build /out/{package} {binary}")
    );
    assert_eq!(d.one("ENTRYPOINT"), format!("[\"{binary}\"]"));
    assert_eq!(
        d.one("HEALTHCHECK").split("CMD ").nth(1),
        Some(format!("[\"{binary}\", \"healthcheck\"]").as_str())
    );

    // Unprivileged, listening where it says, configured with real variables.
    assert_ne!(d.user_id(), 0);
    let env: Vec<(String, String)> = d
        .one("ENV")
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("ENV k=v");
            (k.to_string(), v.to_string())
        })
        .collect();
    let config = container_config(&[], &env);
    assert!(config.bind.ip().is_unspecified());
    assert_eq!(d.one("EXPOSE"), format!("{}/tcp", config.bind.port()));
    let names: BTreeSet<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains("TICKSYNC_BIND"));
}

/// Runs `ticksync-server --bind ADDR healthcheck`; its exit code and output.
fn healthcheck(server_bin: &Path, bind: &str) -> (Option<i32>, String) {
    let mut child = Command::new(server_bin)
        .args(["--bind", bind, "healthcheck", "--timeout", "2s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the healthcheck");
    let status = wait_with_limit(&mut child, "the healthcheck", WAIT);
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    (status.code(), out)
}

#[test]
fn the_images_healthcheck_command_asks_the_servers_healthz() {
    let (server_bin, _) = built_binaries();
    let mut server = ServerProcess::start(&server_bin, &[], WAIT);
    let bind = server.addr.to_string();
    let (code, out) = healthcheck(&server_bin, &bind);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("healthy: "), "{out}");
    assert!(out.contains("\"status\":\"ok\""), "{out}");
    // As in the image: bound to every address, asked over loopback.
    let any = format!("0.0.0.0:{}", server.addr.port());
    assert_eq!(healthcheck(&server_bin, &any).0, Some(0));

    assert_eq!(server.terminate(WAIT).code(), Some(0));
    let (code, out) = healthcheck(&server_bin, &bind);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("unhealthy: "), "{out}");
}
