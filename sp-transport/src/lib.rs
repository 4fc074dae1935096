//! Addresses, transports and the one shared async driver that connects them to `sp-core`.
//!
//! * [`addr`] parses `tcp://`, `ipc://` and `inproc://` URLs.
//! * [`rt`] holds the small runtime traits an adapter implements (spawn, timer, streams).
//! * [`Socket`] is the driver: a protocol core behind a lock, pipe tasks that batch frames
//!   into vectored writes, dialers that reconnect with back-off, and listeners.
//!
//! Adapters (`sp-tokio`, `sp-smol`) implement [`rt::Runtime`] and name the typed sockets,
//! for example `type Req = Socket<Tokio, sp_core::protocol::reqrep::Req>`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod addr;
mod cores;
mod endpoint;
mod error;
mod pipe;
pub mod rt;
mod socket;

pub use addr::Address;
pub use error::{Error, Result};
pub use socket::{Socket, SocketCore, SocketOptions};
pub use sp_core::{Message, ProtocolId};
