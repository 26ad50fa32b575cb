//! Optional TLS (`wss://` and `https://` on the same port) with a certificate
//! that can be replaced while the server runs.
//!
//! The acceptor's rustls configuration never changes; its certificate resolver
//! hands every new handshake the current [`CertifiedKey`]. A reload (SIGHUP,
//! [`Server::reload_tls`](crate::Server::reload_tls), or `--tls-watch` noticing
//! new files) parses and checks the new pair completely before swapping it in,
//! so a bad pair is refused and the old one stays; established connections
//! finished their handshake long ago and keep their session.
//!
//! Terminating TLS at a proxy in front of the server is the alternative
//! (docs/OPERATIONS.md, "TLS").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tracing::{error, info};

use crate::metrics::{Metrics, ReloadResult};
use crate::shared::Shared;

/// Why a certificate / key pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The certificate file holds no certificate.
    #[error("{0} contains no certificate")]
    NoCertificate(PathBuf),
    /// rustls refused the certificate / key pair (e.g. the key is not the
    /// certificate's).
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
    /// The server runs without `--tls-cert` / `--tls-key`.
    #[error("the server has no TLS certificate configured (--tls-cert, --tls-key)")]
    NotConfigured,
}

/// The server's TLS side: an acceptor, and the files its certificate comes from.
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .field("sha256", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The certificate new handshakes get.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    fn get(&self) -> Arc<CertifiedKey> {
        // A poisoned lock still holds a complete pair: swaps are one assignment.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = key;
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

impl Tls {
    /// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or
    /// SEC1) and builds the acceptor.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let current = Arc::new(Current(RwLock::new(Arc::new(load_pair(
            cert, key, &provider,
        )?))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            provider,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor (cheap to clone; it always presents the current certificate).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Reads the certificate and key files again and, if they form a valid pair,
    /// makes it the one new handshakes get. On error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = load_pair(&self.cert_path, &self.key_path, &self.provider)?;
        self.current.set(Arc::new(pair));
        Ok(())
    }

    /// [`Tls::reload`], logged and counted in `ticksync_tls_reloads_total`;
    /// `trigger` says what asked for it (for the log).
    pub fn reload_counted(&self, metrics: &Metrics, trigger: &str) -> Result<(), TlsError> {
        match self.reload() {
            Ok(()) => {
                metrics.tls_reload(ReloadResult::ok);
                info!(
                    trigger,
                    cert = %self.cert_path.display(),
                    sha256 = %self.fingerprint(),
                    "TLS certificate reloaded: new connections get it"
                );
                Ok(())
            }
            Err(e) => {
                metrics.tls_reload(ReloadResult::failed);
                error!(
                    trigger,
                    error = %e,
                    sha256 = %self.fingerprint(),
                    "TLS reload refused: keeping the current certificate"
                );
                Err(e)
            }
        }
    }

    /// The end-entity certificate new handshakes get.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.current.get().cert[0].clone()
    }

    /// SHA-256 of [`Tls::certificate`] in hex, as `openssl x509 -fingerprint
    /// -sha256` shows it (without the colons).
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.certificate().as_ref());
        digest.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
    }

    /// What the two files look like now (modification time and length), to
    /// notice a change without reading them.
    fn stamp(&self) -> Option<[(SystemTime, u64); 2]> {
        let of = |p: &Path| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        };
        Some([of(&self.cert_path)?, of(&self.key_path)?])
    }

    /// Polls the files every `every` and reloads when either changed; runs
    /// until the task is dropped. A failed reload is retried only after the
    /// files change again (a half-written pair is picked up once complete).
    pub(crate) async fn watch(self: Arc<Self>, shared: Arc<Shared>, every: Duration) {
        let mut seen = self.stamp();
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = self.stamp();
            if now.is_some() && now != seen {
                seen = now;
                let _ = self.reload_counted(&shared.metrics, "file change");
            }
        }
    }
}

/// Reads and checks one pair: both files parse, the chain is not empty, the key
/// is one rustls can sign with and belongs to the first certificate.
fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let pem_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: tokio_rustls::rustls::pki_types::pem::Error| TlsError::Pem {
            path: path.clone(),
            message: e.to_string(),
        }
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(pem_err(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err(cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem_err(key))?;
    Ok(CertifiedKey::from_der(certs, key, provider)?)
}
