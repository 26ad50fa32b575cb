//! The bots' transport: a TCP stream, or TLS over it for `wss://` (and an
//! `https://` metrics scrape), with rustls on the ring provider.
//!
//! A [`TlsClient`] is built once per run and shared by every bot: it trusts the
//! system's roots (read with `rustls-native-certs` from the OS store, so the
//! machine's own CA updates and private CAs apply) plus any `--ca-cert`, or with
//! `--insecure` nothing at all. Session resumption is off, so every connection
//! pays a full handshake, as a player's first connection does: load runs
//! measure the worst case, not a cache.

use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::Target;
use crate::error::{BotError, ConfigError};

/// How bots verify a `wss://` server: cheap to clone, shared by all bots of a run.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    insecure: bool,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Trusts the system's root certificates plus the PEM certificates in
    /// `ca_cert` (a self-signed server certificate or a private CA).
    pub fn new(ca_cert: Option<&Path>) -> Result<TlsClient, ConfigError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!(error = %e, "reading the system's root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system root certificates");
        if let Some(path) = ca_cert {
            let bad = |why: String| ConfigError::Invalid {
                flag: "--ca-cert",
                why: format!("{}: {why}", path.display()),
            };
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        if roots.is_empty() {
            return Err(ConfigError::Invalid {
                flag: "--ca-cert",
                why: "the system has no root certificates: give the server's CA with --ca-cert"
                    .into(),
            });
        }
        let config = builder()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient::from_config(config, false))
    }

    /// Accepts any server certificate (still checking that the server holds its
    /// key). For test servers only: a run with it is marked insecure.
    pub fn insecure() -> Result<TlsClient, ConfigError> {
        let provider = Arc::new(ring::default_provider());
        let config = builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(TlsClient::from_config(config, true))
    }

    /// The system's roots only, built once per process (for bots whose options
    /// name no [`TlsClient`]).
    pub fn system() -> Result<TlsClient, ConfigError> {
        static SYSTEM: OnceLock<Result<TlsClient, ConfigError>> = OnceLock::new();
        SYSTEM.get_or_init(|| TlsClient::new(None)).clone()
    }

    /// Whether certificates go unchecked (`--insecure`).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    fn from_config(mut config: ClientConfig, insecure: bool) -> TlsClient {
        config.resumption = Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            insecure,
        }
    }

    /// Runs the TLS handshake over `tcp`, naming `host` (SNI and the name the
    /// certificate must carry: a DNS name or an IP address).
    pub(crate) async fn handshake(&self, host: &str, tcp: TcpStream) -> io::Result<Stream> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = self.connector.connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

type Builder =
    tokio_rustls::rustls::ConfigBuilder<ClientConfig, tokio_rustls::rustls::WantsVerifier>;

fn builder() -> Result<Builder, ConfigError> {
    ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid {
            flag: "--url",
            why: format!("TLS setup: {e}"),
        })
}

/// Whether a handshake failed on the server's certificate (untrusted, expired,
/// for another name), which retrying cannot fix.
pub(crate) fn is_certificate_error(e: &io::Error) -> bool {
    use tokio_rustls::rustls::Error;
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .is_some_and(|e| {
            matches!(
                e,
                Error::InvalidCertificate(_) | Error::NoCertificatesPresented
            )
        })
}

/// Opens a TCP connection to `target` (TCP_NODELAY) and, for a TLS target, runs
/// the handshake with `tls` (the system roots when `None`).
pub(crate) async fn open(target: &Target, tls: Option<&TlsClient>) -> Result<Stream, BotError> {
    let tcp = TcpStream::connect(target.addr())
        .await
        .map_err(BotError::Connect)?;
    tcp.set_nodelay(true).map_err(BotError::Connect)?;
    if !target.tls {
        return Ok(Stream::Plain(tcp));
    }
    let system;
    let tls = match tls {
        Some(t) => t,
        None => {
            system = TlsClient::system()?;
            &system
        }
    };
    tls.handshake(&target.host, tcp)
        .await
        .map_err(BotError::Tls)
}

/// A bot's byte stream: plain TCP or TLS.
pub(crate) enum Stream {
    /// `ws://`, `http://`.
    Plain(TcpStream),
    /// `wss://`, `https://` (boxed: the TLS state is large next to a socket).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `--insecure`: every certificate passes, but the handshake signatures are
/// still verified, so the peer must hold the key of the certificate it sent.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
