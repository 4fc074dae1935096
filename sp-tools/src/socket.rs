//! The protocols the tools know about, and one socket type over all implemented ones.
//!
//! [`Protocol`] lists every SP protocol the command lines accept, implemented or not.
//! [`AnySocket`] is an enum over the socket types that exist today, on any `sp_transport`
//! runtime (tokio, smol); the `any_socket!` table at the bottom is the one place to touch when
//! a protocol is added (one line: `Protocol variant => AnySocket variant(core type)`).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use sp_core::protocol::{bus, pair, pair1, pipeline, pubsub, reqrep, star, survey};
use sp_transport::rt::Runtime;
use sp_transport::SocketCore;
use sp_transport::{
    Address, Error, Message, PipeEvent, PipeVerdict, ProtocolId, Result, SendResult, Socket,
    SocketStats,
};

use crate::runtime::ToolSocket;

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
    /// STAR (mangos' experimental flooding bus; macat's `--star`).
    Star,
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
    /// Both ways, no request/answer pairing (PAIR, BUS, STAR).
    Peer,
}

impl Protocol {
    /// All protocols, in nngcat's help order.
    pub const ALL: [Protocol; 12] = [
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
        Protocol::Star,
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
            Protocol::Star => "star",
        }
    }

    /// How the command-line loops use this protocol.
    pub fn role(self) -> Role {
        match self {
            Protocol::Push0 | Protocol::Pub0 => Role::SendOnly,
            Protocol::Pull0 | Protocol::Sub0 => Role::RecvOnly,
            Protocol::Req0 | Protocol::Surveyor0 => Role::Requester,
            Protocol::Rep0 | Protocol::Respondent0 => Role::Responder,
            Protocol::Pair0 | Protocol::Pair1 | Protocol::Bus0 | Protocol::Star => Role::Peer,
        }
    }

    /// Whether this build can open a socket of this protocol.
    pub fn is_supported(self) -> bool {
        implemented(self)
    }

    /// The SP protocol ID announced in the handshake.
    pub fn id(self) -> ProtocolId {
        match self {
            Protocol::Req0 => ProtocolId::REQ,
            Protocol::Rep0 => ProtocolId::REP,
            Protocol::Pub0 => ProtocolId::PUB,
            Protocol::Sub0 => ProtocolId::SUB,
            Protocol::Push0 => ProtocolId::PUSH,
            Protocol::Pull0 => ProtocolId::PULL,
            Protocol::Surveyor0 => ProtocolId::SURVEYOR,
            Protocol::Respondent0 => ProtocolId::RESPONDENT,
            Protocol::Pair0 => ProtocolId::PAIR0,
            Protocol::Pair1 => ProtocolId::PAIR1,
            Protocol::Bus0 => ProtocolId::BUS,
            Protocol::Star => ProtocolId::STAR,
        }
    }

    /// The protocol with this handshake ID, if the tools know it.
    pub fn from_id(id: ProtocolId) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.id() == id)
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

/// Calls `$m!(args; table)` with the table of implemented protocols: the one place to extend
/// when sp-core grows a protocol (`Protocol variant => socket variant(core type)`).
macro_rules! with_protocols {
    ($m:ident!($($args:tt)*)) => {
        $m! {
            $($args)*;
            Req0 => Req(reqrep::Req),
            Rep0 => Rep(reqrep::Rep),
            Push0 => Push(pipeline::Push),
            Pull0 => Pull(pipeline::Pull),
            Pair0 => Pair(pair::Pair),
            Pair1 => Pair1(pair1::Pair1),
            Pub0 => Pub(pubsub::Pub),
            Sub0 => Sub(pubsub::Sub),
            Surveyor0 => Surveyor(survey::Surveyor),
            Respondent0 => Respondent(survey::Respondent),
            Bus0 => Bus(bus::Bus),
            Star => Star(star::Star),
        }
    };
}

/// A protocol core the tools open as a socket of its own type ([`ToolRuntime::Typed`]).
///
/// [`ToolRuntime::Typed`]: crate::runtime::ToolRuntime::Typed
pub trait ToolCore: SocketCore {
    /// The protocol the core speaks, as the command lines name it.
    const PROTOCOL: Protocol;
}

macro_rules! tool_cores {
    (; $($proto:ident => $variant:ident($core:ty)),* $(,)?) => {
        $(impl ToolCore for $core {
            const PROTOCOL: Protocol = Protocol::$proto;
        })*
    };
}

with_protocols!(tool_cores!());

/// Adds a SUB topic to `core`; the other protocols take none.
fn subscribe_core<P: 'static>(core: &mut P, topic: &[u8]) -> Result<()> {
    match (core as &mut dyn Any).downcast_mut::<pubsub::Sub>() {
        Some(sub) => {
            sub.subscribe(topic);
            Ok(())
        }
        None => Err(Error::NotSupported),
    }
}

/// Implements [`ToolSocket`] for one adapter's socket of a core `P` (`P: ToolCore`): each
/// method is the socket's own call. `call!(expr)` finishes a socket call: `.await` for async
/// sockets, nothing for blocking ones (whose calls then run inline when the tools await them).
///
/// sp-perf measures through these, as NNG's perf tools call NNG's functions directly: a call
/// through [`AnySocket`] also builds the enum's future and matches its variant.
macro_rules! typed_tool_socket {
    (
        impl<$($g:ident: $bound:path),+> for $ty:ty,
        call = $call:ident, future = $send:ident
    ) => {
        impl<$($g: $bound),+> ToolSocket for $ty {
            fn protocol(&self) -> Protocol {
                P::PROTOCOL
            }

            async fn dial(&self, url: &str) -> Result<()> {
                $call!(self.dial(url)).map(drop)
            }

            fn dial_nonblocking(&self, url: &str) -> Result<()> {
                self.dial_nonblocking(url).map(drop)
            }

            async fn listen(&self, url: &str) -> Result<Address> {
                $call!(self.listen(url)).map(|l| l.address())
            }

            fn set_pipe_hook(
                &self,
                hook: impl Fn(&PipeEvent) -> PipeVerdict + Send + Sync + 'static,
            ) {
                self.set_pipe_hook(hook)
            }

            fn stats(&self) -> SocketStats {
                self.stats()
            }

            async fn send_many(&self, msgs: &mut Vec<Message>) -> Result<usize> {
                $call!(self.send_many_any_role(msgs))
            }

            // Not `async fn`s: the socket's own future, with no state machine around it.
            #[allow(clippy::manual_async_fn)]
            fn send(
                &self,
                msg: impl Into<Message> + Send,
            ) -> impl Future<Output = SendResult> + Send {
                $send!(self.send_any_role(msg.into()))
            }

            #[allow(clippy::manual_async_fn)]
            fn recv(&self) -> impl Future<Output = Result<Message>> + Send {
                $send!(self.recv_any_role())
            }

            async fn recv_many(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
                $call!(self.recv_many_any_role(buf, limit))
            }

            fn set_send_timeout(&self, timeout: Option<Duration>) {
                self.set_send_timeout(timeout)
            }

            fn set_recv_timeout(&self, timeout: Option<Duration>) {
                self.set_recv_timeout(timeout)
            }

            fn recv_timeout(&self) -> Option<Duration> {
                self.recv_timeout()
            }

            fn set_recv_max_size(&self, max: usize) -> Result<()> {
                self.set_recv_max_size(max)
            }

            fn set_reconnect_backoff(&self, min: Duration, max: Duration) {
                self.set_reconnect_backoff(min, max)
            }

            fn set_tls(&self, config: sp_transport::TlsConfig) {
                self.set_tls(config)
            }

            fn subscribe(&self, topic: &[u8]) -> Result<()> {
                self.with_core(|core, _| subscribe_core(core, topic))
            }

            async fn close(&self) {
                $call!(self.close())
            }
        }
    };
}

/// Defines an enum over one adapter's sockets of every implemented protocol, with the
/// [`ToolSocket`] methods forwarding to whichever socket is inside.
///
/// `socket!(core)` names the adapter's socket type and `new!(rt)` opens one.
macro_rules! socket_enum {
    (
        $(#[$doc:meta])*
        $name:ident $(<$g:ident: $bound:path>)?, $rt:ty,
        socket = $socket:ident, new = $new:ident;
        $($proto:ident => $variant:ident($core:ty)),* $(,)?
    ) => {
        $(#[$doc])*
        pub enum $name $(<$g: $bound>)? {
            $(
                #[doc = concat!("A `", stringify!($core), "` socket.")]
                $variant($socket!($core)),
            )*
        }

        impl $(<$g: $bound>)? Clone for $name $(<$g>)? {
            fn clone(&self) -> Self {
                match self {
                    $(Self::$variant(s) => Self::$variant(s.clone()),)*
                }
            }
        }

        impl $(<$g: $bound>)? fmt::Debug for $name $(<$g>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.protocol())
            }
        }

        impl $(<$g: $bound>)? $name $(<$g>)? {
            /// Opens a socket of `protocol` on `rt`.
            ///
            /// # Errors
            /// [`Unsupported`] for a protocol this build does not implement yet.
            pub fn open(protocol: Protocol, rt: &$rt) -> std::result::Result<Self, Unsupported> {
                match protocol {
                    $(Protocol::$proto => Ok(Self::$variant($new!(rt))),)*
                    #[allow(unreachable_patterns)]
                    other => Err(Unsupported(other)),
                }
            }
        }

        impl $(<$g: $bound>)? ToolSocket for $name $(<$g>)? {
            fn protocol(&self) -> Protocol {
                match self {
                    $(Self::$variant(s) => ToolSocket::protocol(s),)*
                }
            }

            async fn dial(&self, url: &str) -> Result<()> {
                match self {
                    $(Self::$variant(s) => ToolSocket::dial(s, url).await,)*
                }
            }

            fn dial_nonblocking(&self, url: &str) -> Result<()> {
                match self {
                    $(Self::$variant(s) => ToolSocket::dial_nonblocking(s, url),)*
                }
            }

            async fn listen(&self, url: &str) -> Result<Address> {
                match self {
                    $(Self::$variant(s) => ToolSocket::listen(s, url).await,)*
                }
            }

            fn set_pipe_hook(
                &self,
                hook: impl Fn(&PipeEvent) -> PipeVerdict + Send + Sync + 'static,
            ) {
                match self {
                    $(Self::$variant(s) => ToolSocket::set_pipe_hook(s, hook),)*
                }
            }

            fn stats(&self) -> SocketStats {
                match self {
                    $(Self::$variant(s) => ToolSocket::stats(s),)*
                }
            }

            async fn send_many(&self, msgs: &mut Vec<Message>) -> Result<usize> {
                match self {
                    $(Self::$variant(s) => ToolSocket::send_many(s, msgs).await,)*
                }
            }

            async fn send(&self, msg: impl Into<Message> + Send) -> SendResult {
                let msg = msg.into();
                match self {
                    $(Self::$variant(s) => ToolSocket::send(s, msg).await,)*
                }
            }

            async fn recv(&self) -> Result<Message> {
                match self {
                    $(Self::$variant(s) => ToolSocket::recv(s).await,)*
                }
            }

            async fn recv_many(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
                match self {
                    $(Self::$variant(s) => ToolSocket::recv_many(s, buf, limit).await,)*
                }
            }

            fn set_send_timeout(&self, timeout: Option<Duration>) {
                match self {
                    $(Self::$variant(s) => ToolSocket::set_send_timeout(s, timeout),)*
                }
            }

            fn set_recv_timeout(&self, timeout: Option<Duration>) {
                match self {
                    $(Self::$variant(s) => ToolSocket::set_recv_timeout(s, timeout),)*
                }
            }

            fn recv_timeout(&self) -> Option<Duration> {
                match self {
                    $(Self::$variant(s) => ToolSocket::recv_timeout(s),)*
                }
            }

            fn set_recv_max_size(&self, max: usize) -> Result<()> {
                match self {
                    $(Self::$variant(s) => ToolSocket::set_recv_max_size(s, max),)*
                }
            }

            fn set_reconnect_backoff(&self, min: Duration, max: Duration) {
                match self {
                    $(Self::$variant(s) => ToolSocket::set_reconnect_backoff(s, min, max),)*
                }
            }

            fn set_tls(&self, config: sp_transport::TlsConfig) {
                match self {
                    $(Self::$variant(s) => ToolSocket::set_tls(s, config),)*
                }
            }

            fn subscribe(&self, topic: &[u8]) -> Result<()> {
                match self {
                    $(Self::$variant(s) => ToolSocket::subscribe(s, topic),)*
                }
            }

            async fn close(&self) {
                match self {
                    $(Self::$variant(s) => ToolSocket::close(s).await,)*
                }
            }
        }
    };
}

/// Whether this build can open `protocol`.
macro_rules! implemented {
    ($protocol:expr; $($proto:ident => $variant:ident($core:ty)),* $(,)?) => {
        matches!($protocol, $(Protocol::$proto)|*)
    };
}

fn implemented(protocol: Protocol) -> bool {
    with_protocols!(implemented!(protocol))
}

macro_rules! async_socket {
    ($core:ty) => { Socket<R, $core> };
}
macro_rules! async_new {
    ($rt:ident) => {
        Socket::with_runtime($rt.clone())
    };
}
macro_rules! await_call {
    ($call:expr) => {
        $call.await
    };
}
macro_rules! blocking_socket {
    ($core:ty) => { sp_blocking::Socket<$core> };
}
macro_rules! blocking_new {
    ($rt:ident) => {{
        let _: &crate::blocking::Blocking = $rt;
        sp_blocking::Socket::new()
    }};
}
macro_rules! as_is {
    ($future:expr) => {
        $future
    };
}
macro_rules! ready_now {
    ($call:expr) => {
        std::future::ready($call)
    };
}
macro_rules! inline_call {
    ($call:expr) => {
        $call
    };
}

typed_tool_socket!(
    impl<R: Runtime, P: ToolCore> for Socket<R, P>,
    call = await_call, future = as_is
);
typed_tool_socket!(
    impl<P: ToolCore> for sp_blocking::Socket<P>,
    call = inline_call, future = ready_now
);

with_protocols!(socket_enum!(
    /// A socket of any implemented protocol, on the async runtime `R` (tokio, smol).
    AnySocket<R: Runtime>, R,
    socket = async_socket, new = async_new
));

with_protocols!(socket_enum!(
    /// A socket of any implemented protocol from `sp-blocking`. Its calls block the calling
    /// thread: awaiting one runs it to the end at once.
    BlockingSocket, crate::blocking::Blocking,
    socket = blocking_socket, new = blocking_new
));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_table() {
        // Every protocol nngcat names is implemented now.
        assert!(Protocol::ALL.iter().all(|p| p.is_supported()));
    }

    #[test]
    fn unsupported_message() {
        assert_eq!(
            Unsupported(Protocol::Pub0).to_string(),
            "protocol pub0 is not supported yet"
        );
    }

    #[test]
    fn protocol_ids_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_id(p.id()), Some(p));
        }
        assert_eq!(Protocol::from_id(ProtocolId::PAIR1), Some(Protocol::Pair1));
        assert_eq!(Protocol::from_id(ProtocolId(0x7777)), None);
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
        let rt = sp_tokio::Tokio::default();
        let s = AnySocket::open(Protocol::Pull0, &rt).unwrap();
        assert_eq!(s.protocol(), Protocol::Pull0);
        let s = AnySocket::open(Protocol::Bus0, &rt).unwrap();
        assert_eq!(s.protocol(), Protocol::Bus0);
        let s = AnySocket::open(Protocol::Sub0, &rt).unwrap();
        s.subscribe(b"topic").unwrap();
        let s = AnySocket::open(Protocol::Pub0, &rt).unwrap();
        assert!(matches!(
            s.subscribe(b"topic"),
            Err(sp_transport::Error::NotSupported)
        ));
    }

    /// The role is picked at run time, so a call the role lacks fails with `NotSupported`
    /// rather than at compile time (`send_any_role` / `recv_any_role`).
    #[tokio::test]
    async fn calls_a_role_lacks_are_not_supported() {
        let rt = sp_tokio::Tokio::default();
        let pull = AnySocket::open(Protocol::Pull0, &rt).unwrap();
        let unsent = pull.send("x").await.unwrap_err();
        assert!(matches!(unsent.error(), Error::NotSupported));
        assert_eq!(&unsent.into_message().body[..], b"x");
        let push = AnySocket::open(Protocol::Push0, &rt).unwrap();
        assert!(matches!(push.recv().await, Err(Error::NotSupported)));

        let blocking = crate::blocking::Blocking;
        let sub = BlockingSocket::open(Protocol::Sub0, &blocking).unwrap();
        let unsent = sub.send("x").await.unwrap_err();
        assert!(matches!(unsent.error(), Error::NotSupported));
        let publ = BlockingSocket::open(Protocol::Pub0, &blocking).unwrap();
        assert!(matches!(publ.recv().await, Err(Error::NotSupported)));
    }

    #[test]
    fn open_on_smol() {
        let s = AnySocket::open(Protocol::Pair1, &sp_smol::Smol::default()).unwrap();
        assert_eq!(s.protocol(), Protocol::Pair1);
    }
}
