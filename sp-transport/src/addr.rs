//! Parsing and formatting of SP addresses: `tcp://`, `tls+tcp://`, `ws://`, `wss://`, `ipc://`
//! and `inproc://` URLs (spec 2.2–2.5, 2.7).
//!
//! These are pure functions: nothing here resolves a name, touches the file system or opens a
//! socket. Listeners accept everything [`Address::parse`] accepts; dialers additionally call
//! [`Address::check_dialable`], which refuses a wildcard host.
//!
//! | URL | Parsed as |
//! |---|---|
//! | `tcp://127.0.0.1:5555`, `tcp://localhost:5555` | `Tcp { host, port }` |
//! | `tcp://[::1]:5555` | `Tcp { host: "::1", port }` (no brackets) |
//! | `tcp://:5555`, `tcp://*:5555` | `Tcp { host: "", port }`: all local addresses |
//! | `tcp4://…`, `tcp6://…` (NNG spellings) | the same as `tcp://` |
//! | `ipc:///tmp/sock` | `Ipc { path: "/tmp/sock" }` (three slashes: absolute) |
//! | `ipc://sock` | `Ipc { path: "sock" }`, relative to the working directory |
//! | `inproc://name` | `Inproc { name }`, private to the process |
//! | `abstract://name` (Linux) | `Abstract { name }`: a Unix socket in the abstract namespace |
//! | `tls+tcp://host:5555` (also `tls+tcp4`, `tls+tcp6`) | `Tls { host, port }` |
//! | `ws://host:8080/path`, `ws://host/` (port 80) | `Ws { host, port, path, secure: false }` |
//! | `wss://host:8443/path`, `wss://host` (port 443, path `/`) | `Ws { …, secure: true }` |

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

/// The longest IPC path accepted, in bytes: `sun_path` holds 108 bytes on Linux, one of which
/// is the terminating NUL.
pub const MAX_IPC_PATH_LEN: usize = 107;

/// The longest DNS name accepted, in bytes (RFC 1035).
const MAX_HOSTNAME_LEN: usize = 253;
/// The longest label of a DNS name, in bytes (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// A parsed SP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A TCP endpoint.
    Tcp {
        /// An IPv4 address, an IPv6 address without brackets, or a DNS name. Empty means all
        /// local addresses, which only a listener can use.
        host: String,
        /// The port; 0 on a listener picks an ephemeral port.
        port: u16,
    },
    /// A UNIX domain socket path, absolute or relative to the working directory.
    Ipc {
        /// The socket file.
        path: PathBuf,
    },
    /// A Linux abstract-namespace Unix socket (NNG's `abstract://`): like IPC, but named
    /// by a string instead of a file, so nothing is left behind on the file system and file
    /// permissions do not apply. The name may be empty only for an auto-bound listener.
    Abstract {
        /// The name, without the leading NUL byte.
        name: String,
    },
    /// An in-process endpoint, identified by any non-empty name.
    Inproc {
        /// The endpoint's name.
        name: String,
    },
    /// TCP with TLS: the SP handshake and framing run inside the TLS channel.
    Tls {
        /// As for [`Address::Tcp`].
        host: String,
        /// As for [`Address::Tcp`].
        port: u16,
    },
    /// WebSocket (`ws://`), or WebSocket over TLS (`wss://`): one SP message per WebSocket
    /// message, no SP handshake.
    Ws {
        /// As for [`Address::Tcp`].
        host: String,
        /// The port; 80 (`ws`) or 443 (`wss`) when the URL has none.
        port: u16,
        /// The HTTP path, starting with `/`; `/` when the URL has none.
        path: String,
        /// `wss://`: the connection runs over TLS.
        secure: bool,
    },
}

impl Address {
    /// Parses `url`.
    ///
    /// # Errors
    ///
    /// Returns an [`AddrError`] naming `url` when the scheme is missing or unknown, a TCP port
    /// is missing, not a number or above 65535, a TCP host is malformed, an IPC path is empty,
    /// too long or holds a NUL byte, an abstract name has a bad `%xx` escape or is too long
    /// once decoded, or an inproc name is empty.
    pub fn parse(url: &str) -> Result<Address, AddrError> {
        let err_url = || url.to_owned();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(AddrError::MissingScheme { url: err_url() });
        };
        match scheme {
            "tcp" | "tcp4" | "tcp6" => {
                let (host, port) = parse_host_port(url, rest)?;
                Ok(Address::Tcp { host, port })
            }
            "tls+tcp" | "tls+tcp4" | "tls+tcp6" => {
                let (host, port) = parse_host_port(url, rest)?;
                Ok(Address::Tls { host, port })
            }
            "ws" | "ws4" | "ws6" | "wss" | "wss4" | "wss6" => {
                let secure = scheme.starts_with("wss");
                let (authority, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                let default_port = if secure { 443 } else { 80 };
                let (host, port) = match parse_host_port(url, authority) {
                    Err(AddrError::MissingPort { .. }) => {
                        parse_host_port(url, &format!("{authority}:{default_port}"))?
                    }
                    other => other?,
                };
                Ok(Address::Ws {
                    host,
                    port,
                    path: path.to_owned(),
                    secure,
                })
            }
            "ipc" => {
                if rest.is_empty() {
                    return Err(AddrError::EmptyPath { url: err_url() });
                }
                if rest.contains('\0') {
                    return Err(AddrError::BadPath { url: err_url() });
                }
                if rest.len() > MAX_IPC_PATH_LEN {
                    return Err(AddrError::PathTooLong {
                        url: err_url(),
                        len: rest.len(),
                        max: MAX_IPC_PATH_LEN,
                    });
                }
                Ok(Address::Ipc {
                    path: PathBuf::from(rest),
                })
            }
            "abstract" => {
                let name =
                    percent_decode(rest).ok_or_else(|| AddrError::BadName { url: err_url() })?;
                // 108 bytes of sun_path, minus the leading NUL. The limit is on the decoded
                // name, which is what the socket address holds: the URL may spell a byte as
                // `%xx`, and `Display` does so for spaces and control characters.
                if name.len() > MAX_IPC_PATH_LEN {
                    return Err(AddrError::PathTooLong {
                        url: err_url(),
                        len: name.len(),
                        max: MAX_IPC_PATH_LEN,
                    });
                }
                Ok(Address::Abstract { name })
            }
            "inproc" => {
                if rest.is_empty() {
                    return Err(AddrError::EmptyName { url: err_url() });
                }
                Ok(Address::Inproc {
                    name: rest.to_owned(),
                })
            }
            _ => Err(AddrError::UnknownScheme {
                url: err_url(),
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// Returns the URL scheme: `"tcp"`, `"ipc"`, `"inproc"`, `"tls+tcp"`, `"ws"` or `"wss"`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Address::Tcp { .. } => "tcp",
            Address::Ipc { .. } => "ipc",
            Address::Inproc { .. } => "inproc",
            Address::Abstract { .. } => "abstract",
            Address::Tls { .. } => "tls+tcp",
            Address::Ws { secure: false, .. } => "ws",
            Address::Ws { secure: true, .. } => "wss",
        }
    }

    /// The host and port of a TCP-based address (`tcp`, `tls+tcp`, `ws`, `wss`).
    pub fn host_port(&self) -> Option<(&str, u16)> {
        match self {
            Address::Tcp { host, port }
            | Address::Tls { host, port }
            | Address::Ws { host, port, .. } => Some((host, *port)),
            Address::Ipc { .. } | Address::Inproc { .. } | Address::Abstract { .. } => None,
        }
    }

    /// The IP socket address of a TCP-based address whose host is an IP literal (a pipe's
    /// [`remote_addr`](crate::Pipe::remote_addr) always is); `None` for names and other
    /// transports.
    pub fn socket_addr(&self) -> Option<std::net::SocketAddr> {
        let (host, port) = self.host_port()?;
        let ip: std::net::IpAddr = host.parse().ok()?;
        Some(std::net::SocketAddr::new(ip, port))
    }

    /// Checks that a dialer can connect to this address.
    ///
    /// Everything [`parse`](Self::parse) accepts can be listened on; for dialing, a wildcard
    /// TCP host (`tcp://:5555` or `tcp://*:5555`) names no peer.
    ///
    /// # Errors
    ///
    /// Returns [`AddrError::WildcardDial`] for a TCP address with an empty host.
    pub fn check_dialable(&self) -> Result<(), AddrError> {
        match self {
            _ if self.host_port().is_some_and(|(host, _)| host.is_empty()) => {
                Err(AddrError::WildcardDial {
                    url: self.to_string(),
                })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Address {
    /// Formats the address as a URL that [`Address::parse`] reads back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ipc { path } => write!(f, "ipc://{}", path.display()),
            Address::Inproc { name } => write!(f, "inproc://{name}"),
            Address::Abstract { name } => write!(f, "abstract://{}", percent_encode(name)),
            Address::Tcp { host, port }
            | Address::Tls { host, port }
            | Address::Ws { host, port, .. } => {
                write!(f, "{}://", self.scheme())?;
                if host.contains(':') {
                    write!(f, "[{host}]:{port}")?;
                } else {
                    write!(f, "{host}:{port}")?;
                }
                if let Address::Ws { path, .. } = self {
                    f.write_str(path)?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Address {
    type Err = AddrError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Address::parse(url)
    }
}

/// Why a URL is not a usable SP address. Each message names the URL and says how to fix it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The URL has no `scheme://` part.
    #[error(
        "invalid address {url:?}: no scheme; write tcp://host:port, ipc://path or inproc://name"
    )]
    MissingScheme {
        /// The URL as given.
        url: String,
    },
    /// The scheme is not one this library speaks.
    #[error(
        "invalid address {url:?}: unknown scheme {scheme:?}; use tcp://, ipc://, inproc://, \
         tls+tcp://, ws:// or wss:// (tcp4:// and tcp6:// are read as tcp://)"
    )]
    UnknownScheme {
        /// The URL as given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// A TCP URL has no port.
    #[error("invalid address {url:?}: the port is missing; write tcp://host:port")]
    MissingPort {
        /// The URL as given.
        url: String,
    },
    /// A TCP port is not a decimal number from 0 to 65535.
    #[error("invalid address {url:?}: the port must be a decimal number from 0 to 65535")]
    BadPort {
        /// The URL as given.
        url: String,
    },
    /// A TCP host is not an IPv4 address, a bracketed IPv6 address or a DNS name.
    #[error(
        "invalid address {url:?}: the host must be an ipv4 address, an ipv6 address in brackets \
         ([::1]), a dns name, or empty or * for all local addresses"
    )]
    BadHost {
        /// The URL as given.
        url: String,
    },
    /// A TCP URL with a wildcard host was used to dial.
    #[error(
        "cannot dial {url:?}: an empty or * host means all local addresses and only works for \
         listening; name the host to connect to"
    )]
    WildcardDial {
        /// The URL (as formatted from the parsed address).
        url: String,
    },
    /// An IPC URL has no path.
    #[error(
        "invalid address {url:?}: the ipc path is empty; write ipc:///absolute/path or \
         ipc://relative/path"
    )]
    EmptyPath {
        /// The URL as given.
        url: String,
    },
    /// An IPC path or abstract name does not fit in a UNIX socket address.
    #[error(
        "invalid address {url:?}: the ipc path or abstract name is {len} bytes but unix \
         sockets allow at most {max}; use a shorter one"
    )]
    PathTooLong {
        /// The URL as given.
        url: String,
        /// The path's length in bytes (for an abstract name, once its escapes are decoded).
        len: usize,
        /// The limit, [`MAX_IPC_PATH_LEN`].
        max: usize,
    },
    /// An IPC path contains a NUL byte, which no socket path can hold.
    #[error("invalid address {url:?}: the ipc path contains a nul byte; remove it")]
    BadPath {
        /// The URL as given.
        url: String,
    },
    /// An abstract socket name has a `%` not followed by two hex digits, or does not decode
    /// to UTF-8.
    #[error(
        "invalid address {url:?}: the abstract name has a bad escape; write a byte as %xx \
         with two hex digits (%25 for %), and make the decoded name valid utf-8"
    )]
    BadName {
        /// The URL as given.
        url: String,
    },
    /// An inproc URL has no name.
    #[error("invalid address {url:?}: the inproc name is empty; write inproc://some-name")]
    EmptyName {
        /// The URL as given.
        url: String,
    },
}

/// Decodes NNG's `%xx` escapes in an abstract socket name (`None` for a bad escape or a
/// result that is not UTF-8).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes what a URL cannot hold plainly in an abstract name (`%`, control bytes, spaces).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c.is_control() || c == ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses the `host:port` part of a TCP-based URL.
fn parse_host_port(url: &str, authority: &str) -> Result<(String, u16), AddrError> {
    let bad_host = || AddrError::BadHost {
        url: url.to_owned(),
    };
    let missing_port = || AddrError::MissingPort {
        url: url.to_owned(),
    };

    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']').ok_or_else(bad_host)?;
        inside.parse::<Ipv6Addr>().map_err(|_| bad_host())?;
        let port = after.strip_prefix(':').ok_or_else(missing_port)?;
        (inside, port)
    } else {
        let (host, port) = authority.rsplit_once(':').ok_or_else(missing_port)?;
        // An unbracketed IPv6 address would be ambiguous with the port separator.
        if host.contains(':') {
            return Err(bad_host());
        }
        let host = if host == "*" { "" } else { host };
        if !host.is_empty() && !is_ipv4_or_hostname(host) {
            return Err(bad_host());
        }
        (host, port)
    };

    if port.is_empty() {
        return Err(missing_port());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::BadPort {
            url: url.to_owned(),
        });
    }
    let port = port.parse::<u16>().map_err(|_| AddrError::BadPort {
        url: url.to_owned(),
    })?;
    Ok((host.to_owned(), port))
}

/// Returns true for a dotted-quad IPv4 address or a syntactically valid DNS name.
///
/// A name whose last label is all digits must be an IPv4 address (RFC 1123 section 2.1), which
/// refuses near-misses such as `127.0.0.1.32`. Underscores are tolerated because container and
/// service-discovery names use them.
fn is_ipv4_or_hostname(host: &str) -> bool {
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > MAX_HOSTNAME_LEN {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let last_is_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_is_numeric
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Address {
        Address::Tcp {
            host: host.to_owned(),
            port,
        }
    }

    fn variant(err: &AddrError) -> &'static str {
        match err {
            AddrError::MissingScheme { .. } => "MissingScheme",
            AddrError::UnknownScheme { .. } => "UnknownScheme",
            AddrError::MissingPort { .. } => "MissingPort",
            AddrError::BadPort { .. } => "BadPort",
            AddrError::BadHost { .. } => "BadHost",
            AddrError::WildcardDial { .. } => "WildcardDial",
            AddrError::EmptyPath { .. } => "EmptyPath",
            AddrError::PathTooLong { .. } => "PathTooLong",
            AddrError::BadPath { .. } => "BadPath",
            AddrError::BadName { .. } => "BadName",
            AddrError::EmptyName { .. } => "EmptyName",
        }
    }

    #[test]
    fn parses_tcp_hosts_of_every_kind() {
        assert_eq!(
            Address::parse("tcp://127.0.0.1:5555"),
            Ok(tcp("127.0.0.1", 5555))
        );
        assert_eq!(Address::parse("tcp://[::1]:5555"), Ok(tcp("::1", 5555)));
        assert_eq!(Address::parse("tcp://[::]:0"), Ok(tcp("::", 0)));
        assert_eq!(
            Address::parse("tcp://localhost:5555"),
            Ok(tcp("localhost", 5555))
        );
        assert_eq!(
            Address::parse("tcp://my-host.example.com.:1"),
            Ok(tcp("my-host.example.com.", 1))
        );
        assert_eq!(Address::parse("tcp://*:5555"), Ok(tcp("", 5555)));
        assert_eq!(Address::parse("tcp://:5555"), Ok(tcp("", 5555)));
        assert_eq!(
            Address::parse("tcp4://127.0.0.1:65535"),
            Ok(tcp("127.0.0.1", 65535))
        );
        assert_eq!(
            Address::parse("tcp6://[2001:db8::1]:80"),
            Ok(tcp("2001:db8::1", 80))
        );
    }

    /// Spec 8.1 #10 (NNG test_tcp_malformed_address, nanomsg tests/tcp.c).
    #[test]
    fn rejects_malformed_tcp_addresses() {
        let cases = [
            ("tcp://127.0.0.1", "MissingPort"),
            ("tcp://127.0.0.1:", "MissingPort"),
            ("tcp://[::1]", "MissingPort"),
            ("tcp://127.0.0.1.32", "MissingPort"),
            ("tcp://127.0.0.1.32:80", "BadHost"),
            ("tcp://*:1000000", "BadPort"),
            ("tcp://*:65536", "BadPort"),
            ("tcp://-hostname:5555", "BadHost"),
            ("tcp://host-:5555", "BadHost"),
            ("tcp://a..b:5555", "BadHost"),
            ("tcp://ho st:5555", "BadHost"),
            ("tcp://::1:5555", "BadHost"),
            ("tcp://[::1:5555", "BadHost"),
            ("tcp://[nope]:5555", "BadHost"),
            ("tcp://localhost:http", "BadPort"),
            ("tcp://localhost:+80", "BadPort"),
            ("tcp://localhost:80/path", "BadPort"),
            ("127.0.0.1:5555", "MissingScheme"),
            ("udp://127.0.0.1:5555", "UnknownScheme"),
        ];
        for (url, expected) in cases {
            let err = Address::parse(url).expect_err(url);
            assert_eq!(variant(&err), expected, "{url}: unexpected {err:?}");
            assert!(
                err.to_string().contains(url),
                "{url}: message does not name it: {err}"
            );
        }
        let long_label = format!("tcp://{}:1", "a".repeat(64));
        assert!(matches!(
            Address::parse(&long_label),
            Err(AddrError::BadHost { .. })
        ));
    }

    #[test]
    fn wildcard_host_can_listen_but_not_dial() {
        for url in ["tcp://:5555", "tcp://*:5555"] {
            let addr = Address::parse(url).unwrap();
            assert_eq!(
                addr.check_dialable(),
                Err(AddrError::WildcardDial {
                    url: "tcp://:5555".to_owned()
                })
            );
        }
        assert_eq!(
            Address::parse("tcp://127.0.0.1:5555")
                .unwrap()
                .check_dialable(),
            Ok(())
        );
        assert_eq!(
            Address::parse("ipc:///tmp/x").unwrap().check_dialable(),
            Ok(())
        );
        assert_eq!(
            Address::parse("inproc://x").unwrap().check_dialable(),
            Ok(())
        );
    }

    #[test]
    fn parses_ipc_paths() {
        let abs = Address::parse("ipc:///tmp/sp.sock").unwrap();
        assert_eq!(
            abs,
            Address::Ipc {
                path: PathBuf::from("/tmp/sp.sock")
            }
        );
        let rel = Address::parse("ipc://sp.sock").unwrap();
        assert_eq!(
            rel,
            Address::Ipc {
                path: PathBuf::from("sp.sock")
            }
        );
        assert!(matches!(
            Address::parse("ipc://"),
            Err(AddrError::EmptyPath { .. })
        ));
        assert!(matches!(
            Address::parse("ipc://a\0b"),
            Err(AddrError::BadPath { .. })
        ));
    }

    #[test]
    fn rejects_ipc_paths_longer_than_sun_path() {
        let fits = format!("ipc:///{}", "p".repeat(MAX_IPC_PATH_LEN - 1));
        assert!(Address::parse(&fits).is_ok());
        let too_long = format!("ipc:///{}", "p".repeat(MAX_IPC_PATH_LEN));
        assert_eq!(
            Address::parse(&too_long),
            Err(AddrError::PathTooLong {
                url: too_long.clone(),
                len: 108,
                max: 107
            })
        );
    }

    /// The limit of an abstract name applies to the decoded name (what `sun_path` holds), not
    /// to its escaped spelling in the URL: a name that parses prints as a URL that parses
    /// again, however many of its bytes `Display` escapes (found by the `address_parse` fuzz
    /// target: `abstract://` and 36 spaces printed as 108 characters, refused as too long).
    #[test]
    fn abstract_name_limit_counts_decoded_bytes() {
        for name in [
            " ".repeat(MAX_IPC_PATH_LEN),
            "\u{1}".repeat(MAX_IPC_PATH_LEN),
            "a".repeat(MAX_IPC_PATH_LEN),
        ] {
            let addr = Address::Abstract { name: name.clone() };
            let printed = addr.to_string();
            assert_eq!(Address::parse(&printed), Ok(addr), "{printed}");
        }
        let escaped = format!("abstract://{}", "%41".repeat(MAX_IPC_PATH_LEN));
        assert_eq!(
            Address::parse(&escaped),
            Ok(Address::Abstract {
                name: "A".repeat(MAX_IPC_PATH_LEN)
            })
        );
        let too_long = format!("abstract://{}", "%20".repeat(MAX_IPC_PATH_LEN + 1));
        assert_eq!(
            Address::parse(&too_long),
            Err(AddrError::PathTooLong {
                url: too_long.clone(),
                len: MAX_IPC_PATH_LEN + 1,
                max: MAX_IPC_PATH_LEN
            })
        );
        for url in ["abstract://%zz", "abstract://%4", "abstract://%ff"] {
            assert_eq!(
                Address::parse(url),
                Err(AddrError::BadName {
                    url: url.to_owned()
                })
            );
        }
    }

    #[test]
    fn parses_inproc_names() {
        assert_eq!(
            Address::parse("inproc://any thing/at:all"),
            Ok(Address::Inproc {
                name: "any thing/at:all".to_owned()
            })
        );
        assert!(matches!(
            Address::parse("inproc://"),
            Err(AddrError::EmptyName { .. })
        ));
    }

    #[test]
    fn display_round_trips() {
        for url in [
            "tcp://127.0.0.1:5555",
            "tcp://[::1]:5555",
            "tcp://:0",
            "tcp://example.com:80",
            "ipc:///tmp/sp.sock",
            "ipc://relative/sp.sock",
            "inproc://name",
        ] {
            let addr: Address = url.parse().unwrap();
            assert_eq!(addr.to_string(), url);
            assert_eq!(Address::parse(&addr.to_string()), Ok(addr));
        }
        assert_eq!(Address::parse("tcp://*:1").unwrap().to_string(), "tcp://:1");
        assert_eq!(
            Address::parse("tcp6://[::1]:1").unwrap().to_string(),
            "tcp://[::1]:1"
        );
    }

    #[test]
    fn scheme_names_the_transport() {
        assert_eq!(tcp("", 1).scheme(), "tcp");
        assert_eq!(Address::Ipc { path: "x".into() }.scheme(), "ipc");
        assert_eq!(Address::Inproc { name: "x".into() }.scheme(), "inproc");
    }

    #[test]
    fn parses_tls_and_websocket_urls() {
        let ws = |host: &str, port, path: &str, secure| Address::Ws {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
            secure,
        };
        assert_eq!(
            Address::parse("tls+tcp://localhost:4433"),
            Ok(Address::Tls {
                host: "localhost".into(),
                port: 4433
            })
        );
        assert_eq!(
            Address::parse("tls+tcp6://[::1]:1").unwrap().to_string(),
            "tls+tcp://[::1]:1"
        );
        assert_eq!(
            Address::parse("ws://127.0.0.1:8080/a/b"),
            Ok(ws("127.0.0.1", 8080, "/a/b", false))
        );
        // No path means "/", no port means the scheme's default.
        assert_eq!(Address::parse("ws://host"), Ok(ws("host", 80, "/", false)));
        assert_eq!(
            Address::parse("wss://host/x"),
            Ok(ws("host", 443, "/x", true))
        );
        assert_eq!(
            Address::parse("wss://[::1]:9/p"),
            Ok(ws("::1", 9, "/p", true))
        );
        assert_eq!(Address::parse("ws://*:9/p"), Ok(ws("", 9, "/p", false)));
        for url in [
            "tls+tcp://a:1",
            "ws://[::1]:9/p",
            "wss://h:443/",
            "ws://:0/x",
        ] {
            assert_eq!(Address::parse(url).unwrap().to_string(), url);
        }
        // Errors name the URL, and a wildcard host cannot be dialed on any TCP-based scheme.
        assert!(matches!(
            Address::parse("tls+tcp://host"),
            Err(AddrError::MissingPort { .. })
        ));
        assert!(matches!(
            Address::parse("ws://host:99999/"),
            Err(AddrError::BadPort { .. })
        ));
        for url in ["tls+tcp://*:1", "ws://:1/", "wss://*:1/x"] {
            assert!(matches!(
                Address::parse(url).unwrap().check_dialable(),
                Err(AddrError::WildcardDial { .. })
            ));
        }
        assert_eq!(Address::parse("wss://h/").unwrap().scheme(), "wss");
        assert_eq!(
            Address::parse("tls+tcp://h:1").unwrap().host_port(),
            Some(("h", 1))
        );
    }
}
