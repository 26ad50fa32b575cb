//! The public matchmaking endpoints (docs/PROTOCOL.md, "Matchmaking"):
//!
//! - `POST /matchmake` (optional JSON body `{"kind": "..."}`): reserves a seat
//!   through the directory and answers the room, the URL to connect to and a
//!   signed seat token; with `--auth-secret` the caller's join token comes in
//!   `Authorization: Bearer ...` and the seat carries its identity;
//! - `GET /rooms`: the open rooms (no per-room internals: those are the
//!   admin routes' business, `net/admin.rs`).
//!
//! Both answer cross-origin callers (`Access-Control-Allow-Origin: *`), so a
//! game page served elsewhere can matchmake; `OPTIONS` answers the preflight.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use tracing::{debug, info};

use super::http::{self, BodyError, RequestHead};
use super::limits::Limited;
use crate::auth;
use crate::matchmaker::seat::{self, SeatClaims};
use crate::matchmaker::{DirectoryError, Reserved, matchmake};
use crate::metrics::{ApiRoute, MatchmakeOutcome};
use crate::room::{RoomId, RoomInfo};
use crate::shared::Shared;

/// The matchmaking path.
pub const MATCHMAKE_PATH: &str = "/matchmake";
/// The room list path.
pub const ROOMS_PATH: &str = "/rooms";
/// Largest `POST /matchmake` body accepted, in bytes.
pub const MAX_BODY_LEN: usize = 1024;

const CORS: (&str, &str) = ("Access-Control-Allow-Origin", "*");

/// A `POST /matchmake` body. Unknown fields are ignored (later versions may
/// add some).
#[derive(Debug, Default, Deserialize)]
struct Request {
    kind: Option<String>,
}

/// A `POST /matchmake` answer.
#[derive(Debug, Serialize)]
struct Answer {
    room: RoomId,
    kind: String,
    url: String,
    token: String,
    seat: String,
    expires_ms: u64,
    expires_in_ms: u64,
}

/// One room in `GET /rooms`.
#[derive(Debug, Serialize)]
struct Listed {
    id: RoomId,
    kind: String,
    players: u32,
    reserved: u32,
    capacity: u32,
    tick: u32,
    tick_rate: u16,
    age_secs: u64,
    /// Whether its match is locked (`lock=full` or `lock=<duration>`): it
    /// takes no newcomer.
    locked: bool,
    /// The fleet member that runs it (`--redis` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<String>,
}

impl From<RoomInfo> for Listed {
    fn from(r: RoomInfo) -> Listed {
        Listed {
            id: r.id,
            kind: r.kind,
            players: r.players,
            reserved: r.reserved,
            capacity: r.capacity,
            tick: r.tick,
            tick_rate: r.tick_rate,
            age_secs: r.age_secs,
            locked: r.locked,
            member: r.member,
        }
    }
}

/// A refusal: status, outcome, body text, `Retry-After` seconds.
struct Refused(u16, MatchmakeOutcome, String, Option<u64>);

impl Refused {
    fn new(status: u16, outcome: MatchmakeOutcome, text: impl Into<String>) -> Refused {
        Refused(status, outcome, text.into(), None)
    }

    fn retry(outcome: MatchmakeOutcome, text: impl Into<String>, after: u64) -> Refused {
        Refused(503, outcome, text.into(), Some(after))
    }
}

impl From<Limited> for Refused {
    fn from(l: Limited) -> Refused {
        let after = l.retry_after_secs();
        let (outcome, text) = match l {
            Limited::Rate(_) => (
                MatchmakeOutcome::rate_limited,
                format!("too many matchmaking requests from your address: retry in {after} s"),
            ),
            Limited::Seats(_) => (
                MatchmakeOutcome::seats_held,
                format!(
                    "your address holds the most seats it may reserve at once: use them, or retry in {after} s"
                ),
            ),
        };
        Refused(429, outcome, text, Some(after))
    }
}

impl From<DirectoryError> for Refused {
    fn from(e: DirectoryError) -> Refused {
        match e {
            DirectoryError::UnknownKind(_) => {
                Refused::new(400, MatchmakeOutcome::bad_request, e.to_string())
            }
            DirectoryError::Full => Refused::retry(MatchmakeOutcome::full, e.to_string(), 1),
            DirectoryError::Draining => {
                Refused::retry(MatchmakeOutcome::draining, e.to_string(), 5)
            }
            DirectoryError::Unavailable(_) => {
                Refused::retry(MatchmakeOutcome::unavailable, e.to_string(), 1)
            }
        }
    }
}

/// Answers a request for [`MATCHMAKE_PATH`] (any method).
pub async fn serve_matchmake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    head: &RequestHead,
    leftover: Vec<u8>,
    shared: &Shared,
    deadline: Instant,
    peer: SocketAddr,
) {
    let answer = match head.method.as_str() {
        "POST" => limited_reserve(stream, head, leftover, shared, deadline, peer.ip()).await,
        "OPTIONS" => {
            let _ = http::respond(
                stream,
                204,
                "text/plain",
                b"",
                &[
                    CORS,
                    ("Access-Control-Allow-Methods", "POST"),
                    (
                        "Access-Control-Allow-Headers",
                        "Authorization, Content-Type",
                    ),
                    ("Access-Control-Max-Age", "600"),
                ],
            )
            .await;
            return;
        }
        _ => {
            let _ = http::respond(
                stream,
                405,
                "text/plain",
                b"only POST\n",
                &[("Allow", "POST, OPTIONS"), CORS],
            )
            .await;
            return;
        }
    };
    match answer {
        Ok(body) => {
            shared.metrics.matchmake(MatchmakeOutcome::ok);
            let _ = http::respond(stream, 200, "application/json", body.as_bytes(), &[CORS]).await;
        }
        Err(Refused(status, outcome, text, retry_after)) => {
            shared.metrics.matchmake(outcome);
            debug!(status, ?outcome, %text, "matchmake refused");
            let body = serde_json::json!({ "error": text }).to_string();
            let retry_after = retry_after.map(|s| s.to_string());
            let mut headers = vec![CORS];
            headers.extend(retry_after.as_deref().map(|s| ("Retry-After", s)));
            if status == 401 {
                headers.push(("WWW-Authenticate", "Bearer"));
            }
            let _ = http::respond(
                stream,
                status,
                "application/json",
                body.as_bytes(),
                &headers,
            )
            .await;
        }
    }
}

/// The per-address limits (docs/OPERATIONS.md, section 2), then [`reserve`].
/// A matchmake that reserves nothing gives the address's seat back.
async fn limited_reserve<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: &RequestHead,
    leftover: Vec<u8>,
    shared: &Shared,
    deadline: Instant,
    ip: IpAddr,
) -> Result<String, Refused> {
    if shared.config.ip_limit_exempt.contains(ip) {
        return reserve(stream, head, leftover, shared, deadline).await;
    }
    let now = std::time::Instant::now();
    if let Err(limited) = shared.api_limits.check(ip, ApiRoute::matchmake, now) {
        shared.metrics.api_limited(ApiRoute::matchmake);
        return Err(limited.into());
    }
    let answer = reserve(stream, head, leftover, shared, deadline).await;
    if answer.is_err() {
        shared.api_limits.unreserve(ip, now);
    }
    answer
}

async fn reserve<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: &RequestHead,
    leftover: Vec<u8>,
    shared: &Shared,
    deadline: Instant,
) -> Result<String, Refused> {
    let now_ms = auth::unix_now_ms();
    let identity = identity(head, shared, now_ms / 1000)?;
    let body = match timeout_at(
        deadline,
        http::read_body(stream, head, leftover, MAX_BODY_LEN),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            return Err(Refused::new(
                413,
                MatchmakeOutcome::too_large,
                format!("the body must be at most {MAX_BODY_LEN} bytes"),
            ));
        }
        Ok(Err(BodyError::LengthRequired)) => {
            return Err(Refused::new(
                411,
                MatchmakeOutcome::too_large,
                "a body needs a Content-Length (no chunked encoding)",
            ));
        }
        Ok(Err(BodyError::Io(_))) | Err(_) => {
            return Err(Refused::new(
                400,
                MatchmakeOutcome::bad_request,
                "the body was not received in time",
            ));
        }
    };
    let request: Request = if body.iter().all(u8::is_ascii_whitespace) {
        Request::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Refused::new(
                400,
                MatchmakeOutcome::bad_request,
                format!("the body must be JSON like {{\"kind\": \"name\"}}: {e}"),
            )
        })?
    };
    if shared.is_draining() {
        return Err(DirectoryError::Draining.into());
    }
    let kinds = shared.host.kinds();
    let kind = match request.kind {
        None => kinds.default_kind().spec.name.clone(),
        Some(k) if kinds.get(&k).is_some() => k,
        Some(k) => return Err(DirectoryError::UnknownKind(k).into()),
    };
    let hold = shared.config.seat_timeout;
    let Reserved {
        listing,
        reservation,
    } = matchmake(shared.directory.as_ref(), &kind, identity, now_ms, hold).await?;
    let token = seat::mint(
        &shared.seat_key,
        &SeatClaims {
            room: listing.room,
            seat: reservation.seat,
            expires_ms: reservation.expires_ms,
            identity: reservation.identity.clone(),
        },
    );
    let base = if listing.endpoint.is_empty() {
        local_base(head, shared)
    } else {
        listing.endpoint.trim_end_matches('/').to_string()
    };
    info!(room = %listing.room, %kind, seat = %reservation.seat, "seat reserved");
    let answer = Answer {
        room: listing.room,
        kind,
        url: format!("{base}{}?room={}", ticksync_protocol::WS_PATH, listing.room),
        token,
        seat: reservation.seat.to_string(),
        expires_ms: reservation.expires_ms,
        expires_in_ms: reservation.expires_ms.saturating_sub(now_ms),
    };
    Ok(serde_json::to_string(&answer).unwrap_or_default())
}

/// The caller's identity: with `--auth-secret`, the join token in
/// `Authorization: Bearer ...` (required); without, none.
fn identity(head: &RequestHead, shared: &Shared, now: u64) -> Result<Option<String>, Refused> {
    let Some(secret) = shared.config.auth_secret.as_ref() else {
        return Ok(None);
    };
    let unauthorized = |text: String| Refused::new(401, MatchmakeOutcome::unauthorized, text);
    let token = head
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            unauthorized("this server matchmakes only callers with a join token: send Authorization: Bearer <join token>".into())
        })?;
    auth::verify(secret, token, now)
        .map(|claims| Some(claims.name))
        .map_err(|e| unauthorized(e.to_string().replace("Hello.auth_token", "the join token")))
}

/// `ws://host` or `wss://host` as the caller reached this process: TLS here,
/// or a proxy that says it terminated TLS (`X-Forwarded-Proto: https`).
fn local_base(head: &RequestHead, shared: &Shared) -> String {
    let tls = shared.config.tls_cert.is_some()
        || head
            .forwarded_proto
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let host = head
        .host
        .as_deref()
        .filter(|h| !h.is_empty() && h.bytes().all(is_host_byte))
        .map_or_else(|| shared.config.bind.to_string(), str::to_string);
    format!("{}://{host}", if tls { "wss" } else { "ws" })
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b)
}

/// Answers `GET /rooms`: a JSON array of the open rooms, oldest first; 429 +
/// `Retry-After` over the address's limit.
pub async fn serve_rooms<S: AsyncWrite + Unpin>(stream: &mut S, shared: &Shared, peer: SocketAddr) {
    let ip = peer.ip();
    if !shared.config.ip_limit_exempt.contains(ip)
        && let Err(limited) =
            shared
                .api_limits
                .check(ip, ApiRoute::rooms, std::time::Instant::now())
    {
        shared.metrics.api_limited(ApiRoute::rooms);
        let after = limited.retry_after_secs().to_string();
        let body = serde_json::json!({
            "error": format!("too many room list requests from your address: retry in {after} s")
        })
        .to_string();
        let headers = [CORS, ("Retry-After", after.as_str())];
        let _ = http::respond(stream, 429, "application/json", body.as_bytes(), &headers).await;
        return;
    }
    let (status, body) = match shared.directory.list().await {
        Ok(rooms) => {
            let rooms: Vec<Listed> = rooms.into_iter().map(Listed::from).collect();
            (200, serde_json::to_string(&rooms).unwrap_or_default())
        }
        Err(e) => (
            503,
            serde_json::json!({ "error": e.to_string() }).to_string(),
        ),
    };
    let _ = http::respond(stream, status, "application/json", body.as_bytes(), &[CORS]).await;
}
