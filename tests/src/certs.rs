//! Test-only certificates, generated fresh for each test process (never real keys).
//!
//! One CA signs a server certificate (valid for `localhost`, `127.0.0.1` and `::1`), a client
//! certificate, and an expired server certificate; a second, unrelated CA signs a server
//! certificate nobody trusts. Everything is also written to PEM files for peers such as
//! nngcat, which take paths.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate with its private key, as PEM.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
    /// A file holding the certificate followed by the key (nngcat's `--cert` without `--key`).
    pub combined_file: PathBuf,
    /// A file holding only the certificate.
    pub cert_file: PathBuf,
    /// A file holding only the key.
    pub key_file: PathBuf,
}

/// The test PKI. See the module docs.
#[derive(Debug)]
pub struct TestPki {
    _dir: tempfile::TempDir,
    /// The trusted CA's certificate.
    pub ca_pem: String,
    /// The trusted CA's certificate file.
    pub ca_file: PathBuf,
    /// The server identity, signed by the trusted CA.
    pub server: Identity,
    /// A client identity for mutual TLS, signed by the trusted CA.
    pub client: Identity,
    /// A server identity whose validity ended in 2021, signed by the trusted CA.
    pub expired: Identity,
    /// A server identity signed by a CA nobody trusts.
    pub untrusted: Identity,
}

/// The process-wide test PKI, generated on first use.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(generate)
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca cert")
}

fn leaf(
    dir: &Path,
    tag: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    client: bool,
    expired: bool,
) -> Identity {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, tag);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("leaf cert");
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    let write = |name: String, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write pem");
        path
    };
    Identity {
        combined_file: write(format!("{tag}.pem"), &format!("{cert_pem}{key_pem}")),
        cert_file: write(format!("{tag}.crt"), &cert_pem),
        key_file: write(format!("{tag}.key"), &key_pem),
        cert_pem,
        key_pem,
    }
}

fn generate() -> TestPki {
    let dir = tempfile::tempdir().expect("temp dir");
    let trusted = ca("sp test ca");
    let other = ca("sp untrusted test ca");
    let ca_pem = trusted.pem();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("write ca");
    TestPki {
        server: leaf(dir.path(), "server", &trusted, false, false),
        client: leaf(dir.path(), "client", &trusted, true, false),
        expired: leaf(dir.path(), "expired", &trusted, false, true),
        untrusted: leaf(dir.path(), "untrusted", &other, false, false),
        ca_pem,
        ca_file,
        _dir: dir,
    }
}

/// A listener's TLS: the test server certificate, no client certificate asked for.
pub fn server_tls() -> sp_transport::TlsConfig {
    let p = pki();
    sp_transport::TlsConfig::builder()
        .cert_key_pem(p.server.cert_pem.clone(), p.server.key_pem.clone())
        .build()
        .expect("server tls")
}

/// A listener's TLS that demands a client certificate signed by the test CA.
pub fn mutual_server_tls() -> sp_transport::TlsConfig {
    let p = pki();
    sp_transport::TlsConfig::builder()
        .cert_key_pem(p.server.cert_pem.clone(), p.server.key_pem.clone())
        .ca_pem(p.ca_pem.clone())
        .require_client_cert(true)
        .build()
        .expect("mutual server tls")
}

/// A dialer's TLS: trusts the test CA, and presents `identity` if there is one.
pub fn client_tls_as(identity: Option<&Identity>) -> sp_transport::TlsConfig {
    let b = sp_transport::TlsConfig::builder().ca_pem(pki().ca_pem.clone());
    match identity {
        Some(id) => b.cert_key_pem(id.cert_pem.clone(), id.key_pem.clone()),
        None => b,
    }
    .build()
    .expect("client tls")
}

/// A dialer's TLS that trusts the test CA and presents no certificate.
pub fn client_tls() -> sp_transport::TlsConfig {
    client_tls_as(None)
}
