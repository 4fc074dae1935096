//! TLS for `tls+tcp://` and `wss://` endpoints (spec 2.4), on rustls.
//!
//! [`TlsConfig`] is the one typed configuration: a server identity (certificate chain and
//! key), the CA roots a client verifies servers with (on by default), an optional client
//! identity for mutual TLS, and an explicit `insecure` switch. It is set on a socket with
//! `set_tls` and copied into each dialer and listener created afterwards, the way NNG copies
//! its socket-level TLS options onto new endpoints.
//!
//! Nothing SP-specific happens here: a TLS stream is just another [`BoxStream`] for the SP
//! handshake and framing (or the WebSocket upgrade) that follows.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::{TlsAcceptor, TlsConnector};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    ServerConfig, SignatureScheme,
};

use crate::rt::BoxStream;

/// Where PEM data comes from: a file or bytes in memory.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Memory(Vec<u8>),
}

impl Pem {
    fn describe(&self) -> String {
        match self {
            Pem::File(p) => p.display().to_string(),
            Pem::Memory(_) => "the in-memory PEM data".to_owned(),
        }
    }

    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, TlsError> {
        match self {
            Pem::File(p) => std::fs::read(p)
                .map(Into::into)
                .map_err(|source| TlsError::ReadFile {
                    path: p.clone(),
                    source,
                }),
            Pem::Memory(b) => Ok(b.as_slice().into()),
        }
    }

    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = self.bytes()?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadPem {
                what: self.describe(),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                what: self.describe(),
            });
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        let bytes = self.bytes()?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey {
                what: self.describe(),
            },
            e => TlsError::BadPem {
                what: self.describe(),
                detail: e.to_string(),
            },
        })
    }
}

/// Builds a [`TlsConfig`]. Nothing is read or parsed until [`build`](Self::build), which
/// reports every problem with the file or setting it comes from.
#[derive(Clone, Default)]
pub struct TlsConfigBuilder {
    ca: Vec<Pem>,
    identity: Option<(Pem, Pem)>,
    server_name: Option<String>,
    insecure: bool,
    require_client_cert: bool,
}

impl std::fmt::Debug for TlsConfigBuilder {
    /// Shows what is set, never key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfigBuilder")
            .field("ca_certificates", &self.ca.len())
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .field("insecure", &self.insecure)
            .field("require_client_cert", &self.require_client_cert)
            .finish()
    }
}

impl TlsConfigBuilder {
    /// Adds the CA certificates in PEM `pem` to the roots that peers' certificates are
    /// verified against (the server's, and with [`require_client_cert`](Self::require_client_cert)
    /// the clients').
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca.push(Pem::Memory(pem.into()));
        self
    }

    /// Like [`ca_pem`](Self::ca_pem), reading the PEM file at `path` (nngcat's `--cacert`).
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca.push(Pem::File(path.as_ref().to_path_buf()));
        self
    }

    /// Sets our own certificate chain (leaf first) and private key, both PEM. A listener needs
    /// one; a dialer presents it when the server asks for a client certificate.
    pub fn cert_key_pem(mut self, cert_chain: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((Pem::Memory(cert_chain.into()), Pem::Memory(key.into())));
        self
    }

    /// Like [`cert_key_pem`](Self::cert_key_pem), from files. With `key` `None` the key is
    /// read from the certificate file too, as nngcat's `--cert` does without `--key`.
    pub fn cert_key_files(mut self, cert_chain: impl AsRef<Path>, key: Option<&Path>) -> Self {
        let cert = cert_chain.as_ref().to_path_buf();
        let key = key.map_or_else(|| cert.clone(), Path::to_path_buf);
        self.identity = Some((Pem::File(cert), Pem::File(key)));
        self
    }

    /// Names the server a dialer expects, instead of the host in the URL.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Turns server certificate verification off for dialers (nngcat's `--insecure`). The
    /// connection is still encrypted but anyone can pretend to be the server. Off by default.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// Makes listeners demand a client certificate signed by one of the CA roots (mutual
    /// TLS). Off by default, as in NNG.
    pub fn require_client_cert(mut self, require: bool) -> Self {
        self.require_client_cert = require;
        self
    }

    /// Reads and checks everything and builds the rustls configurations.
    ///
    /// # Errors
    /// A file that cannot be read, PEM without the expected certificate or key, a key that
    /// does not fit the certificate, an invalid server name, or client verification asked
    /// for without CA roots.
    pub fn build(self) -> Result<TlsConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for pem in &self.ca {
            for cert in pem.certificates()? {
                roots.add(cert).map_err(|e| TlsError::BadCaCertificate {
                    what: pem.describe(),
                    detail: e.to_string(),
                })?;
            }
        }
        let roots = Arc::new(roots);
        let identity = match &self.identity {
            Some((cert, key)) => Some((cert.certificates()?, key.private_key()?)),
            None => None,
        };
        if let Some(name) = &self.server_name {
            ServerName::try_from(name.as_str())
                .map_err(|_| TlsError::BadServerName(name.clone()))?;
        }

        let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
        let client_builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(TlsError::Setup)?;
        let client_builder = if self.insecure {
            client_builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider.clone())))
        } else {
            client_builder.with_root_certificates(roots.clone())
        };
        let client = match &identity {
            Some((chain, key)) => client_builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(TlsError::BadIdentity)?,
            None => client_builder.with_no_client_auth(),
        };

        let server = match identity {
            Some((chain, key)) => {
                let builder = ServerConfig::builder_with_provider(provider.clone())
                    .with_protocol_versions(&versions)
                    .map_err(TlsError::Setup)?;
                let builder = if self.require_client_cert {
                    if roots.is_empty() {
                        return Err(TlsError::NoClientRoots);
                    }
                    let verifier =
                        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider)
                            .build()
                            .map_err(|e| TlsError::BadCaCertificate {
                                what: "the CA roots".to_owned(),
                                detail: e.to_string(),
                            })?;
                    builder.with_client_cert_verifier(verifier)
                } else {
                    builder.with_no_client_auth()
                };
                Some(Arc::new(
                    builder
                        .with_single_cert(chain, key)
                        .map_err(TlsError::BadIdentity)?,
                ))
            }
            None => None,
        };
        Ok(TlsConfig {
            client: Arc::new(client),
            server,
            server_name: self.server_name,
            has_roots: !roots.is_empty() || self.insecure,
        })
    }
}

/// TLS settings for `tls+tcp://` and `wss://` endpoints; cheap to clone.
///
/// ```no_run
/// # fn main() -> Result<(), sp_transport::tls::TlsError> {
/// use sp_transport::tls::TlsConfig;
/// // A listener: its certificate chain and key.
/// let server = TlsConfig::builder().cert_key_files("server.pem", None).build()?;
/// // A dialer: the CA that signed the server's certificate.
/// let client = TlsConfig::builder().ca_file("ca.pem").build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Option<Arc<ServerConfig>>,
    server_name: Option<String>,
    /// The client side can verify someone (or was told not to).
    has_roots: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_identity", &self.server.is_some())
            .field("server_name", &self.server_name)
            .field("can_verify_servers", &self.has_roots)
            .finish()
    }
}

impl TlsConfig {
    /// Starts a configuration; see [`TlsConfigBuilder`].
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// Uses rustls configurations built elsewhere, for settings the builder does not offer.
    /// Without `server`, listening fails with [`TlsError::NoServerIdentity`].
    pub fn from_rustls(client: Arc<ClientConfig>, server: Option<Arc<ServerConfig>>) -> Self {
        Self {
            client,
            server,
            server_name: None,
            has_roots: true,
        }
    }

    /// The rustls configuration a listener uses.
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        self.server.clone().ok_or(TlsError::NoServerIdentity)
    }

    /// Runs the client side of the TLS handshake on `stream` for the URL host `host`.
    pub(crate) async fn connect(
        &self,
        host: &str,
        stream: BoxStream,
    ) -> Result<(BoxStream, Option<Vec<u8>>), TlsError> {
        if !self.has_roots {
            return Err(TlsError::NoRoots);
        }
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::BadServerName(name.to_owned()))?;
        let tls = TlsConnector::from(self.client.clone())
            .connect(name.clone(), stream)
            .await
            .map_err(|e| TlsError::from_io(e, Some(&name)))?;
        let cert = first_certificate(tls.get_ref().1.peer_certificates());
        Ok((Box::new(tls), cert))
    }
}

/// Runs the server side of the TLS handshake on an accepted `stream`. Returns the TLS stream
/// and the client's certificate, if it sent one.
pub(crate) async fn accept(
    config: Arc<ServerConfig>,
    stream: BoxStream,
) -> Result<(BoxStream, Option<Vec<u8>>), TlsError> {
    let tls = TlsAcceptor::from(config)
        .accept(stream)
        .await
        .map_err(|e| TlsError::from_io(e, None))?;
    let cert = first_certificate(tls.get_ref().1.peer_certificates());
    Ok((Box::new(tls), cert))
}

/// The peer's own certificate (the first of its chain), DER-encoded.
fn first_certificate(chain: Option<&[CertificateDer<'static>]>) -> Option<Vec<u8>> {
    chain.and_then(|c| c.first()).map(|c| c.as_ref().to_vec())
}

/// What went wrong with TLS: the configuration, or a handshake (and on which side's say).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// PEM data is malformed.
    #[error("{what} is not valid PEM: {detail}")]
    BadPem {
        /// The file or data.
        what: String,
        /// The parser's complaint.
        detail: String,
    },
    /// PEM data holds no certificate.
    #[error("{what} holds no certificate (expected a -----BEGIN CERTIFICATE----- block)")]
    NoCertificate {
        /// The file or data.
        what: String,
    },
    /// PEM data holds no private key.
    #[error("{what} holds no private key (expected a -----BEGIN ... PRIVATE KEY----- block); give the key with --key or its own file")]
    NoPrivateKey {
        /// The file or data.
        what: String,
    },
    /// A CA certificate could not be used as a root.
    #[error("the CA certificate in {what} cannot be used: {detail}")]
    BadCaCertificate {
        /// The file or data.
        what: String,
        /// rustls's or webpki's complaint.
        detail: String,
    },
    /// The certificate and key do not work together, or are of an unsupported kind.
    #[error("the certificate and key cannot be used: {0}")]
    BadIdentity(#[source] rustls::Error),
    /// rustls refused the protocol set-up.
    #[error("cannot set up tls: {0}")]
    Setup(#[source] rustls::Error),
    /// The name to verify the server against is not a DNS name or IP address.
    #[error("{0:?} is not a valid server name; use a dns name or an ip address")]
    BadServerName(String),
    /// A `tls+tcp://` or `wss://` endpoint was created on a socket without a TLS
    /// configuration.
    #[error("no tls configuration; set one on the socket (set_tls) before dialing or listening")]
    NotConfigured,
    /// A dialer has nothing to verify servers with.
    #[error("no CA certificate to verify the server with; give one (--cacert, ca_file) or turn verification off explicitly (--insecure)")]
    NoRoots,
    /// Mutual TLS was asked for without CA roots to verify clients with.
    #[error(
        "requiring client certificates needs the CA that signs them; add it with ca_file or ca_pem"
    )]
    NoClientRoots,
    /// A listener has no certificate.
    #[error(
        "a tls listener needs a certificate and key; give them with --cert/--key or cert_key_files"
    )]
    NoServerIdentity,
    /// The server's certificate was signed by a CA we do not trust.
    #[error("the peer's certificate is signed by an unknown certificate authority; give the CA that signed it (--cacert)")]
    UnknownIssuer,
    /// The peer's certificate has expired.
    #[error("the peer's certificate has expired")]
    Expired,
    /// The peer's certificate is not valid yet.
    #[error("the peer's certificate is not valid yet; check both clocks")]
    NotValidYet,
    /// The server's certificate does not name the host we dialed.
    #[error("the server's certificate is not valid for {expected:?}; dial the name on the certificate or set the server name")]
    WrongName {
        /// The name we verified against.
        expected: String,
    },
    /// The peer's certificate is unusable for another reason.
    #[error("the peer's certificate is invalid: {0}")]
    BadCertificate(String),
    /// The client presented no certificate to a listener that requires one.
    #[error("the client presented no certificate, but this listener requires one")]
    NoClientCertificate,
    /// The peer refused the handshake with a TLS alert (for example our certificate).
    #[error("the peer refused the tls handshake: {0:?}{hint}", hint = alert_hint(*.0))]
    PeerRefused(AlertDescription),
    /// Another handshake failure (the peer may not speak TLS at all).
    #[error("tls handshake failed: {0}")]
    Handshake(String),
}

fn alert_hint(alert: AlertDescription) -> &'static str {
    match alert {
        AlertDescription::CertificateRequired => {
            " (the server requires a client certificate; configure one with --cert/--key)"
        }
        AlertDescription::UnknownCA | AlertDescription::BadCertificate => {
            " (the peer does not trust our certificate)"
        }
        _ => "",
    }
}

impl TlsError {
    /// Classifies an IO error from a TLS stream; `server` is the name a client verified.
    pub(crate) fn from_io(e: io::Error, server: Option<&ServerName<'_>>) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Self::from_rustls(tls, server),
            None => Self::Handshake(e.to_string()),
        }
    }

    fn from_rustls(e: &rustls::Error, server: Option<&ServerName<'_>>) -> Self {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => Self::UnknownIssuer,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Self::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotValidYet
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => Self::WrongName {
                    expected: server.map_or_else(String::new, |n| n.to_str().into_owned()),
                },
                other => Self::BadCertificate(format!("{other:?}")),
            },
            rustls::Error::NoCertificatesPresented => Self::NoClientCertificate,
            rustls::Error::AlertReceived(alert) => Self::PeerRefused(*alert),
            other => Self::Handshake(other.to_string()),
        }
    }
}

/// The verifier behind [`TlsConfigBuilder::insecure`]: any server certificate is accepted,
/// but the handshake signatures are still checked so the session keys are sound.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
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
