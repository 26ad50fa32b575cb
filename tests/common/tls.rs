//! TLS for tests: a private CA (rcgen) that issues server certificates for
//! `localhost` and 127.0.0.1, the PEM files a server loads (replaced atomically,
//! as a certificate manager does), bot options that trust the CA, and a probe
//! that reports which certificate a fresh handshake is presented.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use ticksync_bot::{BotOptions, TlsClient};
use ticksync_server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::bins::TempDir;
use super::{WAIT, bot_options, within};

/// A server certificate and its key, as PEM text.
#[derive(Clone)]
pub struct Leaf {
    /// The certificate (what a handshake presents).
    pub der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

/// A test CA with a directory holding `ca.pem` and the served `cert.pem` /
/// `key.pem` (removed on drop).
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    dir: TempDir,
}

impl TestCa {
    /// A new CA; `ca.pem` is written at once, no certificate is served yet.
    pub fn new(label: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("Ticksync test CA {label}"),
        );
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let dir = TempDir::new(&format!("tls-{label}"));
        std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write ca.pem");
        TestCa {
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            dir,
        }
    }

    /// A new server certificate for `localhost` and 127.0.0.1 with a fresh key.
    pub fn issue(&self) -> Leaf {
        let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Makes `leaf` the served pair: each file is written beside its target and
    /// renamed over it, so a reader sees the old file or the new one, never half.
    pub fn install(&self, leaf: &Leaf) {
        self.write_pair(&leaf.cert_pem, &leaf.key_pem);
    }

    /// Serves raw PEM text (for broken pairs).
    pub fn write_pair(&self, cert_pem: &str, key_pem: &str) {
        for (name, text) in [("cert.pem", cert_pem), ("key.pem", key_pem)] {
            let tmp = self.dir.join(&format!("{name}.new"));
            std::fs::write(&tmp, text).expect("write the new file");
            std::fs::rename(&tmp, self.dir.join(name)).expect("rename over the served file");
        }
    }

    /// Serves the certificate of `cert` with the key of `key` (a mismatched pair).
    pub fn install_mismatched(&self, cert: &Leaf, key: &Leaf) {
        self.write_pair(&cert.cert_pem, &key.key_pem);
    }

    /// The served certificate file.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The served key file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The CA certificate (for `--ca-cert`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A test server config serving the installed pair.
    pub fn server_config(&self) -> Config {
        Config {
            tls_cert: Some(self.cert_path()),
            tls_key: Some(self.key_path()),
            ..Config::for_tests()
        }
    }

    /// What bots trust: the system's roots and this CA.
    pub fn client(&self) -> TlsClient {
        TlsClient::new(Some(&self.ca_path())).expect("a TLS client trusting the test CA")
    }

    /// A TLS handshake over `tcp` for `localhost`, verified against this CA
    /// only, with no session resumption (every handshake gets a certificate).
    pub async fn handshake(&self, tcp: TcpStream) -> TlsStream<TcpStream> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .expect("CA into the root store");
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        let name = ServerName::try_from("localhost").expect("server name");
        within(
            WAIT,
            "a TLS handshake",
            TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .expect("the handshake verifies against the test CA")
    }

    /// The certificate a new handshake with `addr` is presented.
    pub async fn presented(&self, addr: SocketAddr) -> CertificateDer<'static> {
        let tcp = within(WAIT, "tcp connect", TcpStream::connect(addr))
            .await
            .expect("tcp connect");
        let tls = self.handshake(tcp).await;
        let (_, conn) = tls.get_ref();
        conn.peer_certificates()
            .expect("the server sent certificates")[0]
            .clone()
    }

    /// `GET path` over https; the status and the body.
    pub async fn https_get(&self, addr: SocketAddr, path: &str) -> (u16, String) {
        let tcp = within(WAIT, "tcp connect", TcpStream::connect(addr))
            .await
            .expect("tcp connect");
        let mut tls = self.handshake(tcp).await;
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        tls.write_all(request.as_bytes()).await.expect("request");
        let mut out = String::new();
        within(WAIT, "the https answer", tls.read_to_string(&mut out))
            .await
            .expect("read the answer");
        let status = out
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {out}"));
        let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.to_owned())
    }
}

/// The `wss://` URL of a TLS server (by IP: the certificates name 127.0.0.1).
pub fn wss_url(server: &Server) -> String {
    format!("wss://{}/ws", server.local_addr())
}

/// [`bot_options`] for bot `n` over `wss://`, trusting `tls`.
pub fn wss_bot_options(server: &Server, n: u64, tls: &TlsClient) -> BotOptions {
    BotOptions {
        url: wss_url(server),
        tls: Some(tls.clone()),
        ..bot_options(server, n)
    }
}
