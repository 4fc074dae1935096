//! Entry points for the cargo-fuzz targets in `fuzz/` that need this crate's internals, and
//! for the corpus replay test (`tests/tests/fuzz_corpus_replay.rs`), which runs every
//! committed input on stable Rust.
//!
//! Each function accepts arbitrary bytes. It panics only when an invariant of the code under
//! test is broken, which is a bug.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use async_tungstenite::tungstenite::handshake::server::ServerHandshake;
use async_tungstenite::tungstenite::handshake::HandshakeError;
use async_tungstenite::tungstenite::Error as WsError;
use sp_core::ProtocolId;

use crate::pipe::lock;
use crate::ws::{subprotocol, ws_config, Upgrade, UpgradeRefusal};

/// The paths the `ws_upgrade` target's listener serves.
const ROUTE_PATHS: [&str; 2] = ["/", "/a/b"];

/// Runs a WebSocket upgrade request through tungstenite's server handshake with the callback
/// every `ws://` and `wss://` listener uses, over a listener serving two routes, and checks
/// what the callback decided.
///
/// The first byte picks the two routes' protocols (a nibble each: one of the twelve SP
/// types, or a type with no registered name); the second holds flags: route 0 closed (bit 0),
/// route 1 closed (bit 1), raw mode (bit 2), leave out the `Upgrade` (bit 3), `Connection`
/// (bit 4) or `Sec-WebSocket-Key` (bit 5) header, feed the request in one read or reads of
/// at most 7, 31 or 100 bytes (bits 6–7).
/// In raw mode the rest is the whole request. Otherwise the rest is split into lines: the
/// first is the request target, each further non-empty line an extra header line, after a
/// valid upgrade request's own headers.
///
/// Checked, against an independent reading of the request bytes: no panic; the listener
/// accepts (`101`) only a request for an open route's path that offers that route's
/// `<protocol>.sp.nanomsg.org` in a `Sec-WebSocket-Protocol` header, and answers with
/// exactly that subprotocol; it refuses an unknown or closed path with `404` and a missing
/// subprotocol with `400` (and never with another status), choosing no route; a request
/// tungstenite refuses itself chooses no route either.
pub fn ws_upgrade(data: &[u8]) {
    upgrade_status(data);
}

/// Runs and checks one `ws_upgrade` input; returns the status the listener answered with
/// (`None`: no answer, or no input).
fn upgrade_status(data: &[u8]) -> Option<u16> {
    let [protocols, flags, rest @ ..] = data else {
        return None;
    };
    let routes: [(&str, ProtocolId, bool); 2] = [
        (
            ROUTE_PATHS[0],
            pick_protocol(protocols & 0x0f),
            flags & 1 == 0,
        ),
        (
            ROUTE_PATHS[1],
            pick_protocol(protocols >> 4),
            flags & 2 == 0,
        ),
    ];
    let request = if flags & 4 != 0 {
        rest.to_vec()
    } else {
        build_request(*flags, rest)
    };
    // Reads of at most this many bytes (tungstenite refuses more than 64 reads averaging
    // under 128 bytes, as a slow-header attack).
    let chunk = [usize::MAX, 7, 31, 100][usize::from(flags >> 6)];

    let chosen: Arc<Mutex<Option<usize>>> = Arc::default();
    let callback = Upgrade {
        // What `HttpServer::route` does with the listener's routes: open routes only.
        route: |path: &str| {
            routes
                .iter()
                .position(|&(p, _, open)| open && p == path)
                .map(|i| (i, routes[i].1))
        },
        chosen: chosen.clone(),
    };
    let wire = Wire {
        input: &request,
        chunk,
        output: Vec::new(),
    };
    let outcome = match ServerHandshake::start(wire, callback, Some(ws_config(0))).handshake() {
        Ok(ws) => Outcome::Accepted(ws.get_ref().output.clone()),
        Err(HandshakeError::Failure(WsError::Http(response))) => {
            Outcome::Refused(response.status().as_u16())
        }
        Err(HandshakeError::Failure(_)) => Outcome::NotAnUpgrade,
        Err(HandshakeError::Interrupted(_)) => {
            unreachable!("reads never block: the input ends with end of stream")
        }
    };
    let chosen = *lock(&chosen);
    let seen = reference_read(&request);

    match outcome {
        Outcome::Accepted(response) => {
            let route = chosen.expect("an accepted upgrade chose no route");
            let (path, protocol, open) = routes[route];
            assert!(open, "accepted an upgrade to the closed route {path:?}");
            let wanted = subprotocol(protocol);
            let seen = seen.expect("tungstenite accepted a request the reference cannot read");
            if let Some(target) = &seen.path {
                assert_eq!(target, path, "accepted a request for another path");
            }
            assert!(
                seen.offers(&wanted),
                "accepted a request that does not offer {wanted}"
            );
            let text = String::from_utf8(response).expect("an ascii response");
            assert!(text.starts_with("HTTP/1.1 101 "), "accepted with {text:?}");
            let answered: Vec<&str> = text
                .lines()
                .filter_map(|line| line.split_once(':'))
                .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
                .map(|(_, value)| value.trim())
                .collect();
            assert_eq!(
                answered,
                [wanted.as_str()],
                "answered with other subprotocols"
            );
            Some(101)
        }
        Outcome::Refused(status) => {
            assert_eq!(chosen, None, "a refused upgrade chose a route");
            let refusal = match status {
                404 => UpgradeRefusal::UnknownPath,
                400 => UpgradeRefusal::ProtocolMismatch,
                other => panic!("refused an upgrade with HTTP {other}"),
            };
            assert_eq!(refusal.status().as_u16(), status);
            let seen = seen.expect("the callback ran on a request the reference cannot read");
            if let Some(target) = &seen.path {
                let open = routes.iter().find(|&&(p, _, open)| open && p == target);
                match (refusal, open) {
                    (UpgradeRefusal::UnknownPath, None) => {}
                    (UpgradeRefusal::ProtocolMismatch, Some(&(_, protocol, _))) => {
                        let wanted = subprotocol(protocol);
                        assert!(
                            !seen.offers(&wanted),
                            "refused a request that offers {wanted}"
                        );
                    }
                    (refusal, open) => {
                        panic!("refused {target:?} as {refusal:?}, its route being {open:?}")
                    }
                }
            }
            Some(status)
        }
        Outcome::NotAnUpgrade => {
            assert_eq!(chosen, None, "a failed upgrade chose a route");
            None
        }
    }
}

/// How a handshake ended.
enum Outcome {
    /// Upgraded; what the listener wrote.
    Accepted(Vec<u8>),
    /// Our callback refused, with this status.
    Refused(u16),
    /// tungstenite refused the request before asking the callback.
    NotAnUpgrade,
}

/// One of the twelve SP types, or (12–15) a type with no registered name.
fn pick_protocol(nibble: u8) -> ProtocolId {
    ProtocolId::ALL
        .get(usize::from(nibble))
        .copied()
        .unwrap_or(ProtocolId(0x0fff))
}

/// A valid upgrade request for `target` (the first line of `rest`) with the extra header
/// lines of `rest` after its own, less the headers `flags` leaves out.
fn build_request(flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut lines = rest.split(|&b| b == b'\n');
    let target = lines.next().unwrap_or_default();
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\n");
    if flags & 8 == 0 {
        request.extend_from_slice(b"Upgrade: websocket\r\n");
    }
    if flags & 0x10 == 0 {
        request.extend_from_slice(b"Connection: Upgrade\r\n");
    }
    if flags & 0x20 == 0 {
        request.extend_from_slice(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    }
    request.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
    // An empty line would end the headers early.
    for line in lines.filter(|line| !line.is_empty() && *line != b"\r") {
        request.extend_from_slice(line);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request
}

/// An in-memory connection: reads give the input at most `chunk` bytes at a time, then end of
/// stream; writes are kept.
struct Wire<'a> {
    input: &'a [u8],
    chunk: usize,
    output: Vec<u8>,
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A request as a deliberately simple reader sees it.
struct Seen {
    /// The request target, when it is a plain absolute path (no query, no other form),
    /// which is then the path a listener looks up.
    path: Option<String>,
    /// The header lines, as name and value.
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Seen {
    /// Whether some `Sec-WebSocket-Protocol` header whose value is visible ASCII lists
    /// `wanted`, in any case.
    fn offers(&self, wanted: &str) -> bool {
        self.headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"sec-websocket-protocol"))
            .filter_map(|(_, value)| {
                let visible = value
                    .iter()
                    .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
                visible.then(|| String::from_utf8_lossy(value))
            })
            .any(|value| {
                value
                    .split(',')
                    .any(|p| p.trim_matches([' ', '\t']).eq_ignore_ascii_case(wanted))
            })
    }
}

/// Reads the request line and the header lines up to the first empty line (lines end with
/// `\n` or `\r\n`; empty lines before the request line are skipped, as HTTP allows).
/// `None` when there is no request line with three parts.
fn reference_read(request: &[u8]) -> Option<Seen> {
    let mut lines = request
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .skip_while(|line| line.is_empty());
    let request_line = lines.next()?;
    let parts: Vec<&[u8]> = request_line.split(|&b| b == b' ').collect();
    let [_method, target, _version] = parts[..] else {
        return None;
    };
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@%".contains(b);
    let path = (target.first() == Some(&b'/') && target.iter().all(plain))
        .then(|| String::from_utf8_lossy(target).into_owned());
    let headers = lines
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((line[..colon].to_vec(), line[colon + 1..].to_vec()))
        })
        .collect();
    Some(Seen { path, headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flags: raw mode, with protocols REP (route 0) and PAIR1 (route 1).
    fn raw(request: &str) -> Vec<u8> {
        let rep = ProtocolId::ALL.iter().position(|&p| p == ProtocolId::REP);
        let pair1 = ProtocolId::ALL.iter().position(|&p| p == ProtocolId::PAIR1);
        let protocols = rep.unwrap() as u8 | (pair1.unwrap() as u8) << 4;
        let mut data = vec![protocols, 4];
        data.extend_from_slice(request.as_bytes());
        data
    }

    #[test]
    fn checks_accepted_and_refused_upgrades() {
        let head = "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        for (path, offer, status) in [
            ("/", "rep.sp.nanomsg.org", 101),
            ("/a/b", "x, PAIR1.sp.nanomsg.org", 101),
            ("/a/b", "rep.sp.nanomsg.org", 400),
            ("/nope", "rep.sp.nanomsg.org", 404),
        ] {
            let request =
                format!("GET {path} HTTP/1.1\r\n{head}Sec-WebSocket-Protocol: {offer}\r\n\r\n");
            assert_eq!(upgrade_status(&raw(&request)), Some(status), "{request}");
        }
        // Route 0 closed.
        let request =
            format!("GET / HTTP/1.1\r\n{head}Sec-WebSocket-Protocol: rep.sp.nanomsg.org\r\n\r\n");
        let mut closed = raw(&request);
        closed[1] |= 1;
        assert_eq!(upgrade_status(&closed), Some(404));
        assert_eq!(upgrade_status(&raw("GET / HTTP/1.0\r\n\r\n")), None);
        // Built requests: no subprotocol offered; one offered, in 7-byte reads.
        assert_eq!(upgrade_status(&[0, 0, b'/']), Some(400));
        let built = b"\x00\x40/\nSec-WebSocket-Protocol: pair.sp.nanomsg.org";
        assert_eq!(upgrade_status(built), Some(101));
        assert_eq!(upgrade_status(&[0, 0]), None);
        assert_eq!(upgrade_status(&[]), None);
    }
}
