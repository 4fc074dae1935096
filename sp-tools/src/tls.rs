//! nngcat's TLS flags (`--cert/-E`, `--key`, `--cacert`, `--insecure/-k`), shared by spcat
//! and sp-perf, and the [`TlsConfig`] they describe.

use std::ffi::OsString;
use std::path::Path;

use sp_transport::{TlsConfig, TlsError};

/// TLS options for `tls+tcp://` and `wss://` endpoints, as nngcat reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `-k/--insecure`: do not verify the server's certificate.
    pub insecure: bool,
    /// `--cacert FILE`: the CA certificates that verify servers.
    pub cacert: Option<OsString>,
    /// `-E/--cert FILE`: our certificate, with the key too unless `--key` is given.
    pub cert: Option<OsString>,
    /// `--key FILE`: our private key.
    pub key: Option<OsString>,
}

impl TlsOptions {
    /// Whether any TLS option was given.
    pub fn any(&self) -> bool {
        self.insecure || self.cacert.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The configuration the flags describe, or `None` when none was given.
    ///
    /// # Errors
    /// A file that cannot be read or holds no usable certificate or key.
    pub fn config(&self) -> Result<Option<TlsConfig>, TlsError> {
        if !self.any() {
            return Ok(None);
        }
        let mut b = TlsConfig::builder().insecure(self.insecure);
        if let Some(ca) = &self.cacert {
            b = b.ca_file(ca);
        }
        if let Some(cert) = &self.cert {
            b = b.cert_key_files(cert, self.key.as_deref().map(Path::new));
        }
        b.build().map(Some)
    }
}
