//! Sans-IO state machines for the Scalability Protocols (SP) of nanomsg, NNG and mangos.
//!
//! This crate performs no IO, spawns no threads, has no async code and never reads a clock:
//! time comes in as a `now: Instant` argument and randomness from a seed in each config. Bytes
//! and events go in; messages to write, events and deadlines come out.
//!
//! ```text
//!            application commands (send / recv)
//!                        |
//!   Input ----> [ Protocol state machine ] ----> poll_transmit() -> Transmit { pipe, msg }
//!   (pipe added/removed/writable,           \--> poll_event()    -> Event (readable, close pipe…)
//!    message received)      handle_timeout(now) <-- poll_timeout() -> Option<Instant>
//! ```
//!
//! Byte-level pieces live beside the protocols: [`frame`] (stream framing for TCP/TLS and IPC),
//! [`handshake`] (the 8-byte SP connection header) and [`backtrace`] (REQ/REP header stacks).
//!
//! The canonical drive loop:
//!
//! ```
//! use std::time::Instant;
//! use sp_core::protocol::{Protocol, Input};
//! use sp_core::protocol::pipeline::{Push, PushConfig};
//! use sp_core::{Message, PipeId, ProtocolId};
//!
//! let mut push = Push::new(PushConfig::default());
//! let now = Instant::now(); // read by the driver, never by the core
//! let pipe = PipeId::new(1).unwrap();
//! push.handle(Input::PipeAdded { pipe, peer: ProtocolId::PULL }, now);
//! push.send(Message::new(&b"job"[..]), now).unwrap();
//! while let Some(tx) = push.poll_transmit() {
//!     assert_eq!(tx.pipe, pipe); // write tx.msg to the pipe's stream here
//! }
//! while let Some(_event) = push.poll_event() {}
//! let _next_wakeup = push.poll_timeout();
//! ```

#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

pub mod backoff;
pub mod backtrace;
pub mod frame;
pub mod handshake;
mod message;
mod pipe;
pub mod protocol;
mod protocol_id;
pub mod rng;
pub mod stats;

#[doc(hidden)]
pub mod fuzzing;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

pub use message::Message;
pub use pipe::{PipeId, PipeIdAllocator};
pub use protocol_id::ProtocolId;
