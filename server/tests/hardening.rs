//! Hardening features that need more than a raw WebSocket client: `wss://` with
//! a generated certificate, the `mint-token` subcommand of the binary whose
//! tokens the server accepts, and the per-connection WebSocket buffer sizes.
//! (Attacks against a live server are in the root suite, tests/adversarial/.)

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use ticksync_protocol::{ClientMsg, Hello, PROTOCOL_VERSION, SUBPROTOCOL, ServerMsg, codec};
use ticksync_server::auth::{self, AuthSecret};
use ticksync_server::{Config, StartError};

use ticksync_testkit::WAIT;
use ticksync_testkit::raw::RawClient;

/// A self-signed certificate for `localhost`, written as PEM files.
struct Cert {
    dir: PathBuf,
    der: CertificateDer<'static>,
}

impl Cert {
    fn new(label: &str) -> Cert {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!("ticksync-tls-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), key.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.signing_key.serialize_pem()).unwrap();
        Cert {
            der: key.cert.der().clone(),
            dir,
        }
    }

    fn config(&self) -> Config {
        Config {
            tls_cert: Some(self.dir.join("cert.pem")),
            tls_key: Some(self.dir.join("key.pem")),
            ..Config::for_tests()
        }
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn wss_serves_the_protocol_and_https_the_health_check() {
    let cert = Cert::new("wss");
    let server = support::start(cert.config()).await;
    let addr = server.local_addr();
    let name = ServerName::try_from("localhost").unwrap();

    // https://…/healthz
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = cert.connector().connect(name.clone(), tcp).await.unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tls.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");

    // wss://…/ws: Hello, Welcome, a snapshot.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = cert.connector().connect(name, tcp).await.unwrap();
    let mut req = "wss://localhost/ws".into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    let hello = codec::encode_client(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        ..Hello::default()
    }));
    ws.send(Message::Binary(hello.into())).await.unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => kinds.push(codec::decode_server(&b).unwrap()),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
    assert!(matches!(kinds[0], ServerMsg::Welcome(_)));
    assert!(matches!(kinds[1], ServerMsg::Snapshot(_)));
    drop(ws);

    // Plain text to a TLS port is no handshake: cut, and nothing served.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_at_the_handshake_timeout() {
    let cert = Cert::new("stall");
    let server = support::start(Config {
        handshake_timeout: Duration::from_millis(300),
        ..cert.config()
    })
    .await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    // Half a ClientHello record header, then nothing.
    tcp.write_all(&[0x16, 0x03]).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "the server closed: {n:?}");
    support::eventually(|| {
        server
            .metrics()
            .disconnects(ticksync_server::metrics::DisconnectReason::handshake_timeout)
            == 1
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_tls_files_stop_the_start() {
    let config = Config {
        tls_cert: Some("/nonexistent/cert.pem".into()),
        tls_key: Some("/nonexistent/key.pem".into()),
        ..Config::for_tests()
    };
    assert!(matches!(
        ticksync_server::Server::start(config).await,
        Err(StartError::Tls(_))
    ));
}

#[tokio::test]
async fn minted_tokens_from_the_binary_are_accepted() {
    let secret = "binary-test-secret-0123456789";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ticksync-server"))
        .args([
            "mint-token",
            "--secret",
            secret,
            "--name",
            "ada",
            "--ttl",
            "10m",
        ])
        .env_remove("TICKSYNC_AUTH_SECRET")
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let s: AuthSecret = secret.parse().unwrap();
    let claims = auth::verify(&s, &token, auth::unix_now()).unwrap();
    assert_eq!(claims.name, "ada");
    assert!(claims.expires <= auth::unix_now() + 600);

    let server = support::start(Config {
        auth_secret: Some(s),
        ..Config::for_tests()
    })
    .await;
    let mut c = RawClient::connect(server.local_addr()).await;
    c.send(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        auth_token: Some(token),
        ..Hello::default()
    }))
    .await;
    c.welcome().await;
    drop(c);
    server.shutdown().await;
}

#[test]
fn per_connection_buffers_are_small_and_the_message_limit_is_the_configs() {
    let c = ticksync_server::net::ws_config(Config::default().max_message_size);
    // tungstenite's defaults (128 KiB read buffer) cost ~1 GB at 10k sockets.
    assert!(c.read_buffer_size <= 8 * 1024, "{}", c.read_buffer_size);
    assert!(c.write_buffer_size <= 16 * 1024, "{}", c.write_buffer_size);
    assert_eq!(c.max_message_size, Some(1024));
    assert_eq!(c.max_frame_size, Some(1024));
}
