//! Addresses, transports and the one shared async driver that connects them to `sp-core`.
//!
//! * [`addr`] parses `tcp://`, `tls+tcp://`, `ws://`, `wss://`, `ipc://` and `inproc://` URLs.
//! * [`tls`] holds the typed TLS configuration (rustls) for `tls+tcp://` and `wss://`.
//! * [`rt`] holds the small runtime traits an adapter implements (spawn, timer, streams).
//! * [`Socket`] is the driver: a protocol core behind a lock, pipe tasks that batch frames
//!   into vectored writes, dialers that reconnect with back-off, and listeners.
//!
//! Adapters (`sp-tokio`, `sp-smol`) implement [`rt::Runtime`] and name the typed sockets,
//! for example `type Req = Socket<Tokio, sp_core::protocol::reqrep::Req>`; `sp-blocking`
//! implements it on a small pool of threads (a reactor and an executor) and wraps the sockets
//! in blocking calls.

#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

pub mod addr;
mod busy_poll;
mod context;
mod cores;
mod device;
mod endpoint;
mod endpoint_handle;
mod error;
mod frame_pool;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(windows)]
mod ipc_windows;
mod pipe;
mod pipe_events;
mod pipe_runner;
mod pipe_view;
mod read_buffer;
mod readiness;
mod recv_set;
mod roles;
pub mod rt;
mod socket;
pub mod stats;
mod streams;
pub mod tls;
#[cfg(unix)]
mod unix;
mod ws;
mod ws_http;

pub use addr::Address;
/// The `bytes` crate, whose `Bytes` hold message bodies.
pub use busy_poll::{busy_poll_limit, set_busy_poll_limit, DEFAULT_BUSY_POLL};
pub use bytes;
pub use context::Context;
pub use device::{device, reflector};
pub use endpoint_handle::{Dialer, EndpointOptions, Listener, ToAddress};
pub use error::{Error, Result, SendResult, Unsent, Unsupported};
pub use pipe_events::{DetachReason, PipeEvent, PipeEvents, PipeVerdict};
pub use pipe_view::{EndpointId, Pipe, Transport};
pub use recv_set::RecvSet;
pub use roles::{ContextRole, RecvRole, SendRole};
pub use rt::{PeerCredentials, TcpOptions};
pub use socket::{Socket, SocketCore, SocketOptions, SocketOptionsBuilder};
pub use sp_core::backoff::BackoffConfig;
pub use sp_core::protocol::ContextId;
pub use sp_core::{Message, PipeId, ProtocolId};
pub use stats::{DropReason, EndpointStats, PipeStats, RefusalReason, SocketStats};
pub use streams::Responses;
pub use tls::{TlsConfig, TlsError};
pub use ws::{MessageConnection, OriginPolicy, UpgradeRefusal};
pub use ws_http::{HttpHandler, HttpRequest, HttpResponse};

/// WebSocket pieces for applications that run their own HTTP server: the upgrade check and
/// answer ([`websocket::answer_upgrade`]), the connection settings
/// ([`websocket::stream_config`]) and the tungstenite crate the connection types come from.
/// [`Socket::adopt_ws`] turns the upgraded connection into a pipe.
pub mod websocket {
    pub use crate::ws::{
        answer_upgrade, stream_config, MessageConnection, OriginPolicy, UpgradeRefusal,
    };
    /// The `async-tungstenite` crate (and its `tungstenite`), so that applications name the
    /// same versions of `WebSocketStream` and `Message` as this crate.
    pub use async_tungstenite;
}

#[doc(hidden)]
pub use sp_core as __sp_core;

/// Names an adapter's typed sockets, `Req`, `Rep`, `Push`, `Pull`, `Pair`, `Pair1`, `Pub`,
/// `Sub`, `Bus`, `Surveyor`, `Respondent`, `Star`, `Pair1Poly` and the raw `XReq`, `XRep`,
/// `XPair`, `XPair1`, `XPush`, `XPull`, `XPub`, `XSub`, `XBus`, `XSurveyor`, `XRespondent`
/// and `XStar`, as
/// `$socket<core>` for the adapter's socket type `$socket<P>`; the one list to extend when the
/// driver gains a protocol.
#[macro_export]
macro_rules! protocol_sockets {
    ($socket:ident) => {
        /// REQ: sends requests and receives their replies; resends on timeout or lost
        /// connection.
        pub type Req = $socket<$crate::__sp_core::protocol::reqrep::Req>;
        /// REP: receives requests and sends each reply back along the request's route.
        pub type Rep = $socket<$crate::__sp_core::protocol::reqrep::Rep>;
        /// PUSH: hands each message to one PULL peer, round-robin, with back-pressure.
        pub type Push = $socket<$crate::__sp_core::protocol::pipeline::Push>;
        /// PULL: receives from all PUSH peers, fair-queued.
        pub type Pull = $socket<$crate::__sp_core::protocol::pipeline::Pull>;
        /// PAIR (v0): one peer at a time, messages both ways.
        pub type Pair = $socket<$crate::__sp_core::protocol::pair::Pair>;
        /// PAIR v1: PAIR with a hop count on the wire (NNG's `pair1`, mono mode); one peer at
        /// a time.
        pub type Pair1 = $socket<$crate::__sp_core::protocol::pair1::Pair1>;
        /// PUB: sends each message to every SUB peer; never blocks (a busy peer's oldest
        /// queued message is dropped).
        pub type Pub = $socket<$crate::__sp_core::protocol::pubsub::Pub>;
        /// SUB: receives from all PUB peers the messages matching one of its topics
        /// (`subscribe`); with no topic, nothing.
        pub type Sub = $socket<$crate::__sp_core::protocol::pubsub::Sub>;
        /// BUS: sends each message to every directly connected BUS peer, receives from all.
        pub type Bus = $socket<$crate::__sp_core::protocol::bus::Bus>;
        /// SURVEYOR: broadcasts a survey and receives the responses until the survey time
        /// ends (then `recv` fails with `TimedOut`).
        pub type Surveyor = $socket<$crate::__sp_core::protocol::survey::Surveyor>;
        /// RESPONDENT: receives surveys and sends each response back to its surveyor.
        pub type Respondent = $socket<$crate::__sp_core::protocol::survey::Respondent>;
        /// STAR (mangos): sends each message to every STAR peer and relays what it receives
        /// to its other peers, up to the TTL; never blocks.
        pub type Star = $socket<$crate::__sp_core::protocol::star::Star>;
        /// PAIR v1 in NNG's polyamorous mode: many peers; a received message names its pipe
        /// (`Message::pipe`) and a send goes to the pipe the message names (or the first
        /// peer), dropped if that peer is gone or busy.
        pub type Pair1Poly = $socket<$crate::__sp_core::protocol::pair1::Pair1Poly>;
        /// Raw REQ: sends the header as given, round-robin; receives replies with their whole
        /// backtrace in the header. The server-facing side of a REQ/REP device.
        pub type XReq = $socket<$crate::__sp_core::protocol::reqrep_raw::XReq>;
        /// Raw REP: receives requests with the arrival pipe in front of their backtrace, and
        /// routes each send by the first header word. The client-facing side of a device.
        pub type XRep = $socket<$crate::__sp_core::protocol::reqrep_raw::XRep>;
        /// Raw PAIR v0: PAIR that reports itself raw, for devices and reflectors.
        pub type XPair = $socket<$crate::__sp_core::protocol::pair::XPair>;
        /// Raw PAIR v1: the hop-count word is the header (checked on send, incremented on the
        /// wire).
        pub type XPair1 = $socket<$crate::__sp_core::protocol::pair1::XPair1>;
        /// Raw PUSH: PUSH that reports itself raw, for pipeline devices.
        pub type XPush = $socket<$crate::__sp_core::protocol::pipeline::XPush>;
        /// Raw PULL: PULL that reports itself raw, for pipeline devices.
        pub type XPull = $socket<$crate::__sp_core::protocol::pipeline::XPull>;
        /// Raw PUB: PUB that reports itself raw, the subscriber-facing side of a forwarder.
        pub type XPub = $socket<$crate::__sp_core::protocol::raw::XPub>;
        /// Raw SUB: receives every message unfiltered, the publisher-facing side of a
        /// forwarder.
        pub type XSub = $socket<$crate::__sp_core::protocol::pubsub::XSub>;
        /// Raw BUS: the header is the origin pipe on receive and a pipe to skip on send, so a
        /// reflector is a BUS hub.
        pub type XBus = $socket<$crate::__sp_core::protocol::bus::XBus>;
        /// Raw SURVEYOR: broadcasts the header as given; receives responses with their
        /// backtrace in the header.
        pub type XSurveyor = $socket<$crate::__sp_core::protocol::survey::XSurveyor>;
        /// Raw RESPONDENT: like raw REP, for survey relays.
        pub type XRespondent = $socket<$crate::__sp_core::protocol::survey::XRespondent>;
        /// Raw STAR: the hop-count word (already incremented) is the header; a send needs a
        /// 4-byte header.
        pub type XStar = $socket<$crate::__sp_core::protocol::star::XStar>;
    };
}
