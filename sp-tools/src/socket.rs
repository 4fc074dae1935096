//! The protocols the tools know about, and one socket type over all implemented ones.
//!
//! [`Protocol`] lists every SP protocol the command lines accept, implemented or not.
//! [`AnySocket`] is an enum over the `sp_tokio` socket types that exist today; the
//! `any_socket!` table at the bottom is the one place to touch when a protocol is added
//! (one line: `Protocol variant => AnySocket variant(socket type)`).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use sp_tokio::{Address, Message, Result};

/// Every SP protocol (and version) the tools can name on their command lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// REQ v0.
    Req0,
    /// REP v0.
    Rep0,
    /// PUB v0.
    Pub0,
    /// SUB v0.
    Sub0,
    /// PUSH v0.
    Push0,
    /// PULL v0.
    Pull0,
    /// SURVEYOR v0.
    Surveyor0,
    /// RESPONDENT v0.
    Respondent0,
    /// PAIR v0.
    Pair0,
    /// PAIR v1.
    Pair1,
    /// BUS v0.
    Bus0,
}

/// What a protocol's socket does in the command-line tools' loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Only sends (PUSH, PUB).
    SendOnly,
    /// Only receives (PULL, SUB).
    RecvOnly,
    /// Sends, then collects answers (REQ, SURVEYOR).
    Requester,
    /// Receives, then answers (REP, RESPONDENT).
    Responder,
    /// Both ways, no request/answer pairing (PAIR, BUS).
    Peer,
}

impl Protocol {
    /// All protocols, in nngcat's help order.
    pub const ALL: [Protocol; 11] = [
        Protocol::Req0,
        Protocol::Rep0,
        Protocol::Pub0,
        Protocol::Sub0,
        Protocol::Push0,
        Protocol::Pull0,
        Protocol::Surveyor0,
        Protocol::Respondent0,
        Protocol::Pair0,
        Protocol::Pair1,
        Protocol::Bus0,
    ];

    /// The NNG-style name with version suffix, e.g. `req0`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Req0 => "req0",
            Protocol::Rep0 => "rep0",
            Protocol::Pub0 => "pub0",
            Protocol::Sub0 => "sub0",
            Protocol::Push0 => "push0",
            Protocol::Pull0 => "pull0",
            Protocol::Surveyor0 => "surveyor0",
            Protocol::Respondent0 => "respondent0",
            Protocol::Pair0 => "pair0",
            Protocol::Pair1 => "pair1",
            Protocol::Bus0 => "bus0",
        }
    }

    /// How the command-line loops use this protocol.
    pub fn role(self) -> Role {
        match self {
            Protocol::Push0 | Protocol::Pub0 => Role::SendOnly,
            Protocol::Pull0 | Protocol::Sub0 => Role::RecvOnly,
            Protocol::Req0 | Protocol::Surveyor0 => Role::Requester,
            Protocol::Rep0 | Protocol::Respondent0 => Role::Responder,
            Protocol::Pair0 | Protocol::Pair1 | Protocol::Bus0 => Role::Peer,
        }
    }

    /// Whether this build can open a socket of this protocol.
    pub fn is_supported(self) -> bool {
        AnySocket::supports(self)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Opening a socket of a protocol this build does not implement yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsupported(pub Protocol);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol {} is not supported yet", self.0)
    }
}

impl std::error::Error for Unsupported {}

/// Defines [`AnySocket`] from a table of `Protocol => Variant(socket type)` lines, with one
/// method per socket operation that forwards to whichever socket is inside.
macro_rules! any_socket {
    ($($proto:ident => $variant:ident($ty:ty)),* $(,)?) => {
        /// A socket of any implemented protocol.
        #[derive(Clone)]
        pub enum AnySocket {
            $(
                #[doc = concat!("A `", stringify!($ty), "` socket.")]
                $variant($ty),
            )*
        }

        impl AnySocket {
            /// Whether [`AnySocket::open`] can open `protocol`.
            pub fn supports(protocol: Protocol) -> bool {
                matches!(protocol, $(Protocol::$proto)|*)
            }

            /// Opens a socket of `protocol` on the current tokio runtime.
            ///
            /// # Errors
            /// [`Unsupported`] for a protocol this build does not implement yet.
            ///
            /// # Panics
            /// Outside a tokio runtime.
            pub fn open(protocol: Protocol) -> std::result::Result<Self, Unsupported> {
                match protocol {
                    $(Protocol::$proto => Ok(Self::$variant(<$ty>::new())),)*
                    #[allow(unreachable_patterns)]
                    other => Err(Unsupported(other)),
                }
            }

            /// The protocol this socket speaks.
            pub fn protocol(&self) -> Protocol {
                match self {
                    $(Self::$variant(_) => Protocol::$proto,)*
                }
            }

            /// Connects to `url`; the first attempt happens now and its failure is returned.
            pub async fn dial(&self, url: &str) -> Result<()> {
                match self {
                    $(Self::$variant(s) => s.dial(url).await,)*
                }
            }

            /// Starts a dialer that keeps retrying in the background.
            pub fn dial_nonblocking(&self, url: &str) -> Result<()> {
                match self {
                    $(Self::$variant(s) => s.dial_nonblocking(url),)*
                }
            }

            /// Listens on `url`, returning the bound address.
            pub async fn listen(&self, url: &str) -> Result<Address> {
                match self {
                    $(Self::$variant(s) => s.listen(url).await,)*
                }
            }

            /// Sends one message.
            pub async fn send(&self, msg: impl Into<Message>) -> Result<()> {
                let msg = msg.into();
                match self {
                    $(Self::$variant(s) => s.send(msg).await,)*
                }
            }

            /// Sends a body (convenience for [`AnySocket::send`]).
            pub async fn send_bytes(&self, body: Bytes) -> Result<()> {
                self.send(body).await
            }

            /// Receives one message.
            pub async fn recv(&self) -> Result<Message> {
                match self {
                    $(Self::$variant(s) => s.recv().await,)*
                }
            }

            /// Sets the send timeout (`None`: wait forever).
            pub fn set_send_timeout(&self, timeout: Option<Duration>) {
                match self {
                    $(Self::$variant(s) => s.set_send_timeout(timeout),)*
                }
            }

            /// Sets the receive timeout (`None`: wait forever).
            pub fn set_recv_timeout(&self, timeout: Option<Duration>) {
                match self {
                    $(Self::$variant(s) => s.set_recv_timeout(timeout),)*
                }
            }

            /// Sets the largest accepted message, for endpoints created afterwards.
            pub fn set_recv_max_size(&self, max: usize) -> Result<()> {
                match self {
                    $(Self::$variant(s) => s.set_recv_max_size(max),)*
                }
            }

            /// Sets the reconnect back-off for dialers created afterwards.
            pub fn set_reconnect_backoff(&self, min: Duration, max: Duration) {
                match self {
                    $(Self::$variant(s) => s.set_reconnect_backoff(min, max),)*
                }
            }

            /// Closes the socket, waiting (up to the linger time) until what was sent is written.
            pub async fn close(&self) {
                match self {
                    $(Self::$variant(s) => s.close().await,)*
                }
            }
        }
    };
}

// The one table to extend when sp-tokio grows a protocol.
any_socket! {
    Req0 => Req(sp_tokio::Req),
    Rep0 => Rep(sp_tokio::Rep),
    Push0 => Push(sp_tokio::Push),
    Pull0 => Pull(sp_tokio::Pull),
    Pair0 => Pair(sp_tokio::Pair),
    Pair1 => Pair1(sp_tokio::Pair1),
}

impl fmt::Debug for AnySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnySocket({})", self.protocol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_table() {
        let supported: Vec<_> = Protocol::ALL
            .iter()
            .copied()
            .filter(|p| p.is_supported())
            .collect();
        assert_eq!(
            supported,
            [
                Protocol::Req0,
                Protocol::Rep0,
                Protocol::Push0,
                Protocol::Pull0,
                Protocol::Pair0,
                Protocol::Pair1
            ]
        );
    }

    #[test]
    fn unsupported_message() {
        assert_eq!(
            Unsupported(Protocol::Pub0).to_string(),
            "protocol pub0 is not supported yet"
        );
    }

    #[test]
    fn roles() {
        assert_eq!(Protocol::Push0.role(), Role::SendOnly);
        assert_eq!(Protocol::Sub0.role(), Role::RecvOnly);
        assert_eq!(Protocol::Surveyor0.role(), Role::Requester);
        assert_eq!(Protocol::Respondent0.role(), Role::Responder);
        assert_eq!(Protocol::Bus0.role(), Role::Peer);
    }

    #[tokio::test]
    async fn open_reports_protocol() {
        let s = AnySocket::open(Protocol::Pull0).unwrap();
        assert_eq!(s.protocol(), Protocol::Pull0);
        assert_eq!(
            AnySocket::open(Protocol::Bus0).unwrap_err(),
            Unsupported(Protocol::Bus0)
        );
    }
}
