//! The demo web client, embedded in the binary: `GET /` serves the page from
//! `web/demo/`, `/app.js` its script and `/lib/*.js` the protocol library from
//! `web/src/`, so a browser needs nothing but the server.
//!
//! `server/web/` is a copy of `clients/web/{demo,src}` (where the JS client is
//! developed and tested), kept inside this crate so its published package builds
//! on its own. `tests/web_assets.rs` fails when the copy differs from the
//! original; `cargo xtask sync-web` refreshes it.

use tokio::io::AsyncWrite;

use super::http;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

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
