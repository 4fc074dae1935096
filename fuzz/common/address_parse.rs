//! The `address_parse` check, shared by the fuzz target and the corpus replay test in
//! `tests/tests/fuzz_corpus_replay.rs` (both include this file with `#[path]`).

use sp_transport::Address;

/// Parses the input (read as UTF-8, invalid sequences replaced) with [`Address::parse`].
///
/// Checked: no panic; `FromStr` agrees with `parse`; every error message names the URL as
/// given; every address that parses prints as a URL that parses back to the same address and
/// prints the same again, starting with its scheme; a WebSocket path starts with `/`; only a
/// wildcard (empty) host is refused for dialing; the socket address, when there is one, has
/// the address's port.
pub fn address_parse(data: &[u8]) {
    let url = String::from_utf8_lossy(data);
    let parsed = Address::parse(&url);
    assert_eq!(
        url.parse::<Address>(),
        parsed,
        "FromStr disagrees with parse"
    );
    let addr = match parsed {
        Ok(addr) => addr,
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains(&format!("{url:?}")),
                "the error {message:?} does not name the URL {url:?}"
            );
            return;
        }
    };
    let printed = addr.to_string();
    let again = Address::parse(&printed).unwrap_or_else(|err| {
        panic!("{url:?} parsed as {addr:?}, printed as {printed:?}, which does not parse: {err}")
    });
    assert_eq!(
        again, addr,
        "{url:?} parsed as {addr:?}, printed as {printed:?}, which parses as {again:?}"
    );
    assert_eq!(again.to_string(), printed, "printing is not stable");
    let scheme = addr.scheme();
    assert!(
        printed.starts_with(scheme) && printed[scheme.len()..].starts_with("://"),
        "{printed:?} does not start with its scheme {scheme:?}"
    );
    if let Address::Ws { path, .. } = &addr {
        assert!(
            path.starts_with('/'),
            "the WebSocket path {path:?} is not absolute"
        );
    }
    let wildcard = addr.host_port().is_some_and(|(host, _)| host.is_empty());
    assert_eq!(
        addr.check_dialable().is_err(),
        wildcard,
        "{addr:?}: dialable disagrees with its host"
    );
    if let Some(sa) = addr.socket_addr() {
        assert_eq!(addr.host_port().map(|(_, port)| port), Some(sa.port()));
    }
}
