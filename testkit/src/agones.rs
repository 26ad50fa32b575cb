//! A stand-in for the Agones SDK server (the sidecar of a GameServer pod),
//! speaking its REST API on 127.0.0.1: `/ready`, `/health`, `/shutdown`,
//! `/allocate`, `/gameserver`, `/watch/gameserver` (newline-delimited JSON,
//! the current GameServer first), `/metadata/label`, `/metadata/annotation`
//! and the Counters under `/v1beta1/counters/{name}`, with the documented
//! JSON (proto field names, 64-bit integers as strings).
//!
//! Real Agones needs Kubernetes, which test machines do not have. This
//! stand-in records every call and can be steered the way the cluster would
//! steer the real one: allocate the GameServer, delete it, stop and restart
//! (keeping the GameServer, as the real sidecar re-reads it from the
//! cluster), or hang (accept connections, never answer). What it does not
//! prove is listed in docs/SCALING.md.
//!
//! It is written from the API documentation, independently of the server's
//! client, so a field the client spells wrong fails here too.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::WAIT;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    /// When it arrived.
    pub at: Instant,
    /// `GET`, `POST`, `PUT`, `PATCH`.
    pub method: String,
    /// The path, e.g. `/v1beta1/counters/players`.
    pub path: String,
    /// The JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

/// A counter of the GameServer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Current count.
    pub count: i64,
    /// Capacity.
    pub capacity: i64,
}

#[derive(Debug)]
struct GameServer {
    state: &'static str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    counters: BTreeMap<String, Counter>,
    deletion_timestamp: i64,
}

#[derive(Debug)]
struct Inner {
    calls: Vec<Call>,
    gs: GameServer,
    watchers: Vec<mpsc::UnboundedSender<Bytes>>,
    hang: bool,
    /// Where the game server listens: checked on every `/ready`.
    game_addr: Option<SocketAddr>,
    /// For each `/ready`, whether the game server accepted a connection then.
    listening_at_ready: Vec<bool>,
}

/// The running stand-in. Stops (closing every connection) on drop.
#[derive(Debug)]
pub struct StandIn {
    port: u16,
    inner: Arc<Mutex<Inner>>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl StandIn {
    /// Starts on a free port of 127.0.0.1 with a GameServer in `Scheduled`
    /// state that declares `counters` (name, capacity), as a Fleet's spec would.
    pub async fn start(counters: &[(&str, i64)]) -> StandIn {
        let counters = counters
            .iter()
            .map(|&(name, capacity)| (name.to_string(), Counter { count: 0, capacity }))
            .collect();
        let inner = Inner {
            calls: Vec::new(),
            gs: GameServer {
                state: "Scheduled",
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                counters,
                deletion_timestamp: 0,
            },
            watchers: Vec::new(),
            hang: false,
            game_addr: None,
            listening_at_ready: Vec::new(),
        };
        let mut s = StandIn {
            port: 0,
            inner: Arc::new(Mutex::new(inner)),
            accept: None,
            conns: Arc::default(),
        };
        s.listen().await;
        s
    }

    /// The port of its REST API (the pod's `AGONES_SDK_HTTP_PORT`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// On every `/ready`, check (and record) that `addr` accepts connections:
    /// Ready must come after the game server listens.
    pub fn check_listening_at_ready(&self, addr: SocketAddr) {
        self.lock().game_addr = Some(addr);
    }

    /// For each `/ready` so far, whether the game server was listening.
    pub fn listening_at_ready(&self) -> Vec<bool> {
        self.lock().listening_at_ready.clone()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls to `path` so far.
    pub fn calls_to(&self, path: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }

    /// The GameServer's state (`Scheduled`, `Ready`, `Allocated`, `Shutdown`).
    pub fn state(&self) -> &'static str {
        self.lock().gs.state
    }

    /// A counter as the stand-in holds it.
    pub fn counter(&self, name: &str) -> Option<Counter> {
        self.lock().gs.counters.get(name).copied()
    }

    /// A label of the GameServer (SDK labels are `agones.dev/sdk-<key>`).
    pub fn label(&self, key: &str) -> Option<String> {
        self.lock().gs.labels.get(key).cloned()
    }

    /// An annotation of the GameServer.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.lock().gs.annotations.get(key).cloned()
    }

    /// What a GameServerAllocation does: the state becomes `Allocated`.
    pub fn allocate(&self) {
        self.update(|gs| gs.state = "Allocated");
    }

    /// What deleting the GameServer does: its deletion timestamp is set.
    pub fn delete(&self) {
        self.update(|gs| gs.deletion_timestamp = 1_700_000_000);
    }

    /// Accept connections but never answer (`false`: answer again).
    pub fn hang(&self, hang: bool) {
        self.lock().hang = hang;
    }

    /// Stops listening and drops every connection (open watch streams end).
    pub async fn stop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
            let _ = a.await;
        }
        let conns: Vec<_> = self.conns.lock().expect("conns").drain(..).collect();
        for c in conns {
            c.abort();
            let _ = c.await;
        }
        self.lock().watchers.clear();
    }

    /// Listens again on the same port, with the GameServer as it was.
    pub async fn restart(&mut self) {
        self.listen().await;
    }

    /// Waits until `pred` holds for the recorded calls; fails the test with
    /// `what` after [`WAIT`].
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&StandIn) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !pred(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("stand-in state")
    }

    fn update(&self, f: impl FnOnce(&mut GameServer)) {
        let mut inner = self.lock();
        f(&mut inner.gs);
        broadcast(&mut inner);
    }

    async fn listen(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the Agones stand-in");
        self.port = listener.local_addr().expect("local addr").port();
        let (inner, conns) = (self.inner.clone(), self.conns.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = inner.clone();
                let conn = tokio::spawn(serve(stream, inner));
                let mut conns = conns.lock().expect("conns");
                conns.retain(|c| !c.is_finished());
                conns.push(conn);
            }
        }));
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(a) = &self.accept {
            a.abort();
        }
        if let Ok(conns) = self.conns.lock() {
            conns.iter().for_each(JoinHandle::abort);
        }
    }
}

async fn serve(stream: TcpStream, inner: Arc<Mutex<Inner>>) {
    let service = hyper::service::service_fn(move |req| handle(req, inner.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(
    req: Request<Incoming>,
    inner: Arc<Mutex<Inner>>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (hang, probe) = {
        let mut i = inner.lock().expect("stand-in state");
        i.calls.push(Call {
            at: Instant::now(),
            method: method.clone(),
            path: path.clone(),
            body: body.clone(),
        });
        (i.hang, i.game_addr.filter(|_| path == "/ready"))
    };
    if hang {
        std::future::pending::<()>().await;
    }
    if let Some(addr) = probe {
        let up = matches!(
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await,
            Ok(Ok(_))
        );
        inner
            .lock()
            .expect("stand-in state")
            .listening_at_ready
            .push(up);
    }
    let mut i = inner.lock().expect("stand-in state");
    let answer = route(&mut i, &method, &path, &body);
    Ok(match answer {
        Answer::Json(status, v) => json_response(status, &v),
        Answer::Watch => {
            let (tx, mut rx) = mpsc::unbounded_channel();
            // The current GameServer first, as the SDK server does.
            let _ = tx.send(watch_line(&i.gs));
            i.watchers.push(tx);
            let stream = futures_util::stream::poll_fn(move |cx| {
                rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
            });
            Response::new(StreamBody::new(stream).boxed_unsync())
        }
    })
}

enum Answer {
    Json(StatusCode, Value),
    Watch,
}

fn route(i: &mut Inner, method: &str, path: &str, body: &Value) -> Answer {
    let ok = Answer::Json(StatusCode::OK, json!({}));
    match (method, path) {
        ("POST", "/ready") => {
            i.gs.state = "Ready";
            broadcast(i);
            ok
        }
        ("POST", "/allocate") => {
            i.gs.state = "Allocated";
            broadcast(i);
            ok
        }
        ("POST", "/shutdown") => {
            i.gs.state = "Shutdown";
            broadcast(i);
            ok
        }
        ("POST", "/health") => ok,
        ("GET", "/gameserver") => Answer::Json(StatusCode::OK, game_server_json(&i.gs)),
        ("GET", "/watch/gameserver") => Answer::Watch,
        ("PUT", "/metadata/label" | "/metadata/annotation") => {
            let (Some(key), Some(value)) = (body["key"].as_str(), body["value"].as_str()) else {
                return error(StatusCode::BAD_REQUEST, 3, "key and value are required");
            };
            let map = if path.ends_with("label") {
                &mut i.gs.labels
            } else {
                &mut i.gs.annotations
            };
            map.insert(format!("agones.dev/sdk-{key}"), value.to_string());
            broadcast(i);
            ok
        }
        (m, p) if p.starts_with("/v1beta1/counters/") => {
            counter(i, m, &p["/v1beta1/counters/".len()..], body)
        }
        _ => error(StatusCode::NOT_FOUND, 5, "Not Found"),
    }
}

/// `GET` or `PATCH` of a counter, with the SDK server's checks: the counter
/// must be declared, and the count stays within 0..=capacity.
fn counter(i: &mut Inner, method: &str, name: &str, body: &Value) -> Answer {
    let Some(c) = i.gs.counters.get(name).copied() else {
        return error(
            StatusCode::NOT_FOUND,
            5,
            &format!("counter not found: {name}"),
        );
    };
    if method == "GET" {
        return Answer::Json(StatusCode::OK, counter_json(name, c));
    }
    if method != "PATCH" {
        return error(StatusCode::NOT_IMPLEMENTED, 12, "Method Not Allowed");
    }
    let (Ok(capacity), Ok(count), Ok(diff)) = (
        int64(&body["capacity"]),
        int64(&body["count"]),
        int64(&body["countDiff"]),
    ) else {
        return error(StatusCode::BAD_REQUEST, 3, "malformed int64");
    };
    let capacity = capacity.unwrap_or(c.capacity);
    let count = count.unwrap_or(c.count) + diff.unwrap_or(0);
    if capacity < 0 || !(0..=capacity).contains(&count) {
        return error(
            StatusCode::BAD_REQUEST,
            11,
            &format!("count {count} out of range 0..={capacity}"),
        );
    }
    let updated = Counter { count, capacity };
    i.gs.counters.insert(name.to_string(), updated);
    broadcast(i);
    Answer::Json(StatusCode::OK, counter_json(name, updated))
}

/// A proto JSON int64 (string or number); absent is `None`.
fn int64(v: &Value) -> Result<Option<i64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or(()),
        Value::String(s) => s.parse().map(Some).map_err(drop),
        _ => Err(()),
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Answer {
    Answer::Json(
        status,
        json!({ "code": code, "message": message, "details": [] }),
    )
}

fn counter_json(name: &str, c: Counter) -> Value {
    json!({ "name": name, "count": c.count.to_string(), "capacity": c.capacity.to_string() })
}

fn game_server_json(gs: &GameServer) -> Value {
    let counters: serde_json::Map<String, Value> = gs
        .counters
        .iter()
        .map(|(k, c)| {
            (
                k.clone(),
                json!({ "count": c.count.to_string(), "capacity": c.capacity.to_string() }),
            )
        })
        .collect();
    json!({
        "object_meta": {
            "name": "ticksync-standin",
            "namespace": "default",
            "uid": "00000000-0000-0000-0000-000000000001",
            "resource_version": "1",
            "generation": "1",
            "creation_timestamp": "1700000000",
            "deletion_timestamp": gs.deletion_timestamp.to_string(),
            "labels": gs.labels,
            "annotations": gs.annotations,
        },
        "status": {
            "state": gs.state,
            "address": "127.0.0.1",
            "ports": [{ "name": "game", "port": 7777 }],
            "counters": counters,
            "lists": {},
        }
    })
}

fn watch_line(gs: &GameServer) -> Bytes {
    let mut line = json!({ "result": game_server_json(gs) }).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// Sends the GameServer to every open watch stream.
fn broadcast(i: &mut Inner) {
    let line = watch_line(&i.gs);
    i.watchers.retain(|w| w.send(line.clone()).is_ok());
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
