//! The admin HTTP API and the monitor page, on the game port, only with
//! `--monitor`. The one place where an admin credential is checked: every
//! request here but the static page must carry `Authorization: Bearer
//! <--admin-token>`; a refusal is answered 401, logged at WARN (the connection's
//! span names the peer) and counted in `ticksync_admin_refused_total`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /monitor` | the page (no data in it: it asks for the token) |
//! | `GET /monitor/state?since=SEQ` | server, tick threads, rooms, history after SEQ |
//! | `GET /rooms/{id}` | one room and its players (id, name, RTT, input queue, ...) |
//! | `POST /rooms/{id}/close` | closes it: its players get 4004 |
//! | `POST /rooms/{id}/kick/{player}` | the player gets 4005 |
//! | `POST /drain` | stops admitting (`/healthz` 503); the binary then drains as on SIGTERM and exits |
//!
//! `GET /rooms` itself (the public room list, which works without `--monitor`)
//! is not routed here: it belongs to the matchmaking side of `net/` and needs
//! no credential; the page reads its rooms from `/monitor/state`.
//!
//! The credential travels in a header, never a cookie, so another site cannot
//! make a browser send it (no CSRF), and no CORS header is ever sent.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWrite;
use tracing::{info, warn};

use ticksync_protocol::PlayerId;

use super::http::{self, RequestHead};
use super::web;
use crate::monitor::Monitor;
use crate::room::RoomId;
use crate::shared::Shared;

/// Longest wait for a room's own thread to list its players.
const DETAIL_TIMEOUT: Duration = Duration::from_secs(2);

/// What an admin request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// A static asset of the page (no credential needed).
    Page,
    State,
    Room(RoomId),
    Close(RoomId),
    Kick(RoomId, PlayerId),
    Drain,
    /// A path of the API with another method: the one it takes.
    Method(&'static str),
    /// Under the API's paths, but nothing there.
    NotFound,
}

/// Whether `path` belongs to the admin API or the monitor page: `/monitor*`,
/// everything under `/rooms/`, `/drain`. Not `/rooms` itself, the public list.
pub(super) fn is_admin_path(path: &str) -> bool {
    path == "/monitor"
        || path.starts_with("/monitor/")
        || path.starts_with("/rooms/")
        || path == "/drain"
}

fn route(method: &str, path: &str) -> Route {
    let get = method == "GET";
    let post = method == "POST";
    let want = |ok: bool, route: Route, allowed: &'static str| {
        if ok { route } else { Route::Method(allowed) }
    };
    if web::monitor_asset(path).is_some() {
        return want(get, Route::Page, "GET");
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let room = |s: &str| s.parse::<RoomId>().ok();
    match parts[..] {
        ["monitor", "state"] => want(get, Route::State, "GET"),
        ["rooms", id] => room(id).map_or(Route::NotFound, |id| want(get, Route::Room(id), "GET")),
        ["rooms", id, "close"] => {
            room(id).map_or(Route::NotFound, |id| want(post, Route::Close(id), "POST"))
        }
        ["rooms", id, "kick", player] => match (room(id), player.parse::<u32>()) {
            (Some(id), Ok(p)) => want(post, Route::Kick(id, PlayerId(p)), "POST"),
            _ => Route::NotFound,
        },
        ["drain"] => want(post, Route::Drain, "POST"),
        _ => Route::NotFound,
    }
}

/// Answers one request to an admin path (see [`is_admin_path`]).
pub(super) async fn serve<S: AsyncWrite + Unpin>(
    stream: &mut S,
    shared: &Arc<Shared>,
    monitor: &Monitor,
    head: &RequestHead,
) -> std::io::Result<()> {
    let route = route(&head.method, &head.path);
    if route == Route::Page {
        return web::serve_monitor(stream, &head.path).await;
    }
    // Checked before anything else, so an unauthenticated request learns
    // nothing, not even whether a room exists.
    if let Err(reason) = monitor.token.check(head.authorization.as_deref()) {
        shared.metrics.admin_refused(reason);
        warn!(?reason, method = %head.method, path = %head.path, "admin request refused");
        let body =
            json!({ "error": "this needs the admin token as `Authorization: Bearer <token>`" });
        return respond(
            stream,
            401,
            &body,
            &[("WWW-Authenticate", "Bearer realm=\"ticksync\"")],
        )
        .await;
    }
    let (status, body) = answer(route, shared, monitor, head).await;
    let allow = match route {
        Route::Method(allowed) => vec![("Allow", allowed)],
        _ => Vec::new(),
    };
    respond(stream, status, &body, &allow).await
}

async fn answer(
    route: Route,
    shared: &Arc<Shared>,
    monitor: &Monitor,
    head: &RequestHead,
) -> (u16, Value) {
    let rooms = shared.rooms();
    let no_room = |id: RoomId| (404, json!({ "error": format!("no open room {id}") }));
    match route {
        Route::Page => (404, Value::Null),
        Route::Method(allowed) => (405, json!({ "error": format!("use {allowed}") })),
        Route::NotFound => (404, json!({ "error": "not found" })),
        Route::State => {
            let since = head
                .query_param("since")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (200, monitor.state(shared, since))
        }
        Route::Room(id) => {
            let Some(room) = rooms.get(id) else {
                return no_room(id);
            };
            match tokio::time::timeout(DETAIL_TIMEOUT, room.detail()).await {
                Ok(Ok(detail)) => {
                    let mut body = json!(room.info());
                    body["players"] = json!(detail.players);
                    (200, body)
                }
                Ok(Err(_)) => no_room(id),
                Err(_) => (
                    503,
                    json!({ "error": "the room's tick thread did not answer" }),
                ),
            }
        }
        Route::Close(id) => {
            let Some(room) = rooms.get(id) else {
                return no_room(id);
            };
            info!(room = %id, players = room.players(), "closing a room on the admin API's request");
            match room.close().await {
                Ok(()) => (200, json!({ "closed": id })),
                Err(_) => no_room(id),
            }
        }
        Route::Kick(id, player) => {
            let Some(room) = rooms.get(id) else {
                return no_room(id);
            };
            match room.kick(player).await {
                Ok(true) => {
                    info!(room = %id, player = player.0, "kicked a player on the admin API's request");
                    (200, json!({ "kicked": player.0, "room": id }))
                }
                Ok(false) => (
                    404,
                    json!({ "error": format!("no player {} in room {id}", player.0) }),
                ),
                Err(_) => no_room(id),
            }
        }
        Route::Drain => {
            if shared.stop_admitting() {
                warn!("draining on the admin API's request");
            }
            (202, json!({ "status": "draining" }))
        }
    }
}

async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    body: &Value,
    headers: &[(&str, &str)],
) -> std::io::Result<()> {
    let body = body.to_string();
    http::respond(stream, status, "application/json", body.as_bytes(), headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "00abcdef01234567";

    #[test]
    fn routes_by_method_and_path() {
        let id = RoomId(0x00ab_cdef_0123_4567);
        for (method, path, expected) in [
            ("GET", "/monitor", Route::Page),
            ("GET", "/monitor/app.js", Route::Page),
            ("GET", "/monitor/state", Route::State),
            ("GET", &format!("/rooms/{ID}"), Route::Room(id)),
            ("POST", &format!("/rooms/{ID}/close"), Route::Close(id)),
            (
                "POST",
                &format!("/rooms/{ID}/kick/42"),
                Route::Kick(id, PlayerId(42)),
            ),
            ("POST", "/drain", Route::Drain),
            ("GET", &format!("/rooms/{ID}/close"), Route::Method("POST")),
            ("POST", &format!("/rooms/{ID}"), Route::Method("GET")),
            ("GET", "/drain", Route::Method("POST")),
            ("DELETE", "/monitor", Route::Method("GET")),
            ("GET", "/rooms/nope", Route::NotFound),
            ("POST", &format!("/rooms/{ID}/kick/x"), Route::NotFound),
            ("GET", "/monitor/../Cargo.toml", Route::NotFound),
        ] {
            assert_eq!(route(method, path), expected, "{method} {path}");
            assert!(is_admin_path(path), "{path}");
        }
        for other in [
            "/",
            "/ws",
            "/healthz",
            "/metrics",
            "/rooms",
            "/roomsx",
            "/monitoring",
            "/drainx",
        ] {
            assert!(!is_admin_path(other), "{other}");
        }
    }
}
