//! The demo web client, embedded in the binary: `GET /` serves the page from
//! `web/demo/`, `/app.js` its script and `/lib/*.js` the protocol library from
//! `web/src/`, so a browser needs nothing but the server.
//!
//! `server/web/{demo,src}` is a copy of `clients/web/{demo,src}` (where the JS
//! client is developed and tested), kept inside this crate so its published
//! package builds on its own. `tests/web_assets.rs` fails when the copy differs
//! from the original; `cargo xtask sync-web` refreshes it.
//!
//! The operator's monitor page (`server/web/monitor/`, developed here: it is
//! part of the server, not of the client library) is served under `/monitor`
//! only with `--monitor` ([`monitor_asset`], routed by `net/admin.rs`), with
//! headers that keep it out of frames and other origins' scripts.

use tokio::io::AsyncWrite;

use super::http;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every embedded asset: URL path, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../web/demo/index.html")),
    (
        "/index.html",
        HTML,
        include_str!("../../web/demo/index.html"),
    ),
    ("/app.js", JS, include_str!("../../web/demo/app.js")),
    ("/lib/index.js", JS, include_str!("../../web/src/index.js")),
    ("/lib/wire.js", JS, include_str!("../../web/src/wire.js")),
    (
        "/lib/messages.js",
        JS,
        include_str!("../../web/src/messages.js"),
    ),
    (
        "/lib/movement.js",
        JS,
        include_str!("../../web/src/movement.js"),
    ),
    ("/lib/world.js", JS, include_str!("../../web/src/world.js")),
    (
        "/lib/prediction.js",
        JS,
        include_str!("../../web/src/prediction.js"),
    ),
    (
        "/lib/interpolation.js",
        JS,
        include_str!("../../web/src/interpolation.js"),
    ),
    (
        "/lib/session.js",
        JS,
        include_str!("../../web/src/session.js"),
    ),
    (
        "/lib/matchmake.js",
        JS,
        include_str!("../../web/src/matchmake.js"),
    ),
];

/// The monitor page's assets: URL path, content type, body.
const MONITOR_ASSETS: &[(&str, &str, &str)] = &[
    (
        "/monitor",
        HTML,
        include_str!("../../web/monitor/index.html"),
    ),
    (
        "/monitor/",
        HTML,
        include_str!("../../web/monitor/index.html"),
    ),
    (
        "/monitor/app.js",
        JS,
        include_str!("../../web/monitor/app.js"),
    ),
    (
        "/monitor/charts.js",
        JS,
        include_str!("../../web/monitor/charts.js"),
    ),
    (
        "/monitor/monitor.css",
        CSS,
        include_str!("../../web/monitor/monitor.css"),
    ),
    (
        "/monitor/favicon.svg",
        SVG,
        include_str!("../../web/monitor/favicon.svg"),
    ),
];

/// Headers of every monitor asset: no framing (its buttons close rooms), no
/// script or connection but its own origin's, no referrer.
const MONITOR_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("Referrer-Policy", "no-referrer"),
];

/// The content type and body of the monitor page's asset at `path`.
pub fn monitor_asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    MONITOR_ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ty, body)| (*ty, body.as_bytes()))
}

/// Answers `GET path` with the monitor page's asset (the caller checked it exists).
pub async fn serve_monitor<S: AsyncWrite + Unpin>(
    stream: &mut S,
    path: &str,
) -> std::io::Result<()> {
    match monitor_asset(path) {
        Some((ty, body)) => http::respond(stream, 200, ty, body, MONITOR_HEADERS).await,
        None => http::respond(stream, 404, "text/plain", b"not found\n", &[]).await,
    }
}

/// The content type and body of the embedded asset at `path`, if there is one.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ty, body)| (*ty, body.as_bytes()))
}

/// Answers `GET path` with the embedded asset, or 404 when there is none.
pub async fn serve<S: AsyncWrite + Unpin>(stream: &mut S, path: &str) -> std::io::Result<()> {
    match asset(path) {
        Some((ty, body)) => {
            http::respond(
                stream,
                200,
                ty,
                body,
                &[("X-Content-Type-Options", "nosniff")],
            )
            .await
        }
        None => http::respond(stream, 404, "text/plain", b"not found\n", &[]).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative module imports (`from "./x.js"`) in an embedded script.
    fn imports(src: &str) -> Vec<&str> {
        src.split("from \"./")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        let app = asset("/app.js").expect("app.js").1;
        let app = std::str::from_utf8(app).expect("utf-8");
        assert_eq!(imports(app), ["lib/index.js"]);
        let mut checked = 0;
        for (path, ty, body) in ASSETS.iter().filter(|(p, _, _)| p.starts_with("/lib/")) {
            assert_eq!(*ty, JS);
            for module in imports(body) {
                assert!(
                    asset(&format!("/lib/{module}")).is_some(),
                    "{path} imports ./{module}, which is not embedded"
                );
                checked += 1;
            }
        }
        assert!(checked >= 8, "only {checked} imports found");
    }

    #[test]
    fn the_page_loads_its_script_as_a_module() {
        let (ty, body) = asset("/").expect("index");
        assert_eq!(ty, HTML);
        let html = std::str::from_utf8(body).expect("utf-8");
        assert!(html.contains(r#"<script type="module" src="app.js">"#));
        assert!(asset("/nope.js").is_none());
        assert!(asset("/lib/../Cargo.toml").is_none());
    }

    #[test]
    fn the_monitor_page_loads_only_its_own_embedded_files() {
        let html = std::str::from_utf8(monitor_asset("/monitor").expect("page").1).expect("utf-8");
        assert!(html.contains(r#"<script type="module" src="/monitor/app.js">"#));
        assert!(html.contains(r#"href="/monitor/monitor.css""#));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no CDN"
        );
        let app = std::str::from_utf8(monitor_asset("/monitor/app.js").expect("app").1).unwrap();
        assert_eq!(imports(app), ["charts.js"]);
        assert!(monitor_asset("/monitor/charts.js").is_some());
        // Not served with the demo: only `net/admin.rs` routes it, with --monitor.
        assert!(asset("/monitor").is_none() && asset("/monitor/app.js").is_none());
    }

    #[tokio::test]
    async fn serves_assets_with_their_content_type() {
        let mut out = Vec::new();
        serve(&mut out, "/lib/wire.js").await.expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Type: text/javascript; charset=utf-8\r\n"));
        assert!(text.contains("export class Reader"));
        let mut out = Vec::new();
        serve(&mut out, "/missing").await.expect("write");
        assert!(out.starts_with(b"HTTP/1.1 404"));
    }
}
