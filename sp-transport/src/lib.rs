//! Addresses, transports and the one shared async driver that connects them to `sp-core`.
//!
//! * [`addr`] parses `tcp://`, `ipc://` and `inproc://` URLs.
//! * [`rt`] holds the small runtime traits an adapter implements (spawn, timer, streams).
//! * [`Socket`] is the driver: a protocol core behind a lock, pipe tasks that batch frames
//!   into vectored writes, dialers that reconnect with back-off, and listeners.
//! * [`threads`] runs pipes on threads instead, for adapters without an event loop.
//!
//! Adapters (`sp-tokio`, `sp-smol`) implement [`rt::Runtime`] and name the typed sockets,
//! for example `type Req = Socket<Tokio, sp_core::protocol::reqrep::Req>`; `sp-blocking`
//! implements it with threads and wraps the sockets in blocking calls.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod addr;
mod cores;
mod endpoint;
mod error;
mod pipe;
pub mod rt;
mod socket;
pub mod threads;

pub use addr::Address;
pub use error::{Error, Result};
pub use socket::{Socket, SocketCore, SocketOptions};
pub use sp_core::{Message, ProtocolId};

#[doc(hidden)]
pub use sp_core as __sp_core;

/// Names an adapter's typed sockets, `Req`, `Rep`, `Push`, `Pull`, `Pair`, `Pair1`, `Pub`,
/// `Sub`, `Bus`, `Surveyor` and `Respondent`, as
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
    };
}
