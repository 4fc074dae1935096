//! The `tls_config` check, shared by the fuzz target and the corpus replay test in
//! `tests/tests/fuzz_corpus_replay.rs` (both include this file with `#[path]`).

use sp_transport::TlsConfig;

/// Feeds arbitrary PEM bytes and settings through `TlsConfig::builder()` and `build()`.
///
/// The first byte holds flags: CA roots given (bit 0), a second CA given (bit 1), an identity
/// given (bit 2), the key in the certificate's PEM instead of its own (bit 3), a server name
/// given (bit 4), `insecure` (bit 5), `require_client_cert` (bit 6). Then come the pieces, each
/// a 2-byte big-endian length and that many bytes: CA, second CA, certificate chain, key,
/// server name (UTF-8, invalid sequences replaced).
///
/// Checked: `build` returns an error (with a message) or a configuration, never panics; the
/// builder's and the configuration's `Debug` never show key material.
pub fn tls_config(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut piece = || {
        let len = match rest {
            [hi, lo, tail @ ..] => {
                rest = tail;
                usize::from(u16::from_be_bytes([*hi, *lo]))
            }
            _ => {
                rest = &[];
                0
            }
        };
        let (head, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        head.to_vec()
    };
    let ca = piece();
    let ca2 = piece();
    let cert = piece();
    let key = piece();
    let name = piece();

    let mut builder = TlsConfig::builder();
    if flags & 1 != 0 {
        builder = builder.ca_pem(ca);
    }
    if flags & 2 != 0 {
        builder = builder.ca_pem(ca2);
    }
    if flags & 4 != 0 {
        let key = if flags & 8 != 0 { cert.clone() } else { key };
        builder = builder.cert_key_pem(cert, key);
    }
    if flags & 16 != 0 {
        builder = builder.server_name(String::from_utf8_lossy(&name).into_owned());
    }
    builder = builder
        .insecure(flags & 32 != 0)
        .require_client_cert(flags & 64 != 0);
    // Debug shows the server name, so only a name without PEM markers tells.
    let tells = !String::from_utf8_lossy(&name).contains("BEGIN");
    let shown = format!("{builder:?}");
    assert!(
        !(tells && shown.contains("BEGIN")),
        "the builder's Debug shows PEM data"
    );
    match builder.build() {
        Ok(config) => {
            let shown = format!("{config:?}");
            assert!(
                !(tells && shown.contains("BEGIN")),
                "the config's Debug shows PEM data"
            );
        }
        Err(err) => assert!(!err.to_string().is_empty(), "an error without a message"),
    }
}
