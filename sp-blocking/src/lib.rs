//! Scalability Protocols sockets with plain blocking calls, on std sockets and threads.
//!
//! Each protocol role is a type: [`Req`], [`Rep`], [`Push`], [`Pull`], [`Pair`], [`Pair1`],
//! [`Pair1Poly`], [`Pub`], [`Sub`], [`Bus`], [`Surveyor`], [`Respondent`], [`Star`], and the raw
//! ones that expose headers: [`XReq`], [`XRep`], [`XPair`], [`XPair1`], [`XPush`], [`XPull`],
//! [`XPub`], [`XSub`], [`XBus`], [`XSurveyor`], [`XRespondent`], [`XStar`]. REQ, REP,
//! SURVEYOR, RESPONDENT and SUB open [`Context`]s; [`device`] and [`reflector`] join raw
//! sockets. Every URL scheme works: `tcp`, `ipc`, `inproc`, `tls+tcp`, `ws`, `wss` (TLS is
//! configured with [`TlsConfig`]).
//! On Windows, where `ipc` is a named pipe, it fails with [`Error::Unsupported`]
//! ([`Unsupported::NamedPipes`]): use `sp-tokio` for named pipes.
//! They have the methods of the `sp-tokio` sockets, with the same options and the same
//! [`Error`], as blocking calls: `send` returns once a peer's queue took the message, `recv`
//! once a message arrived, each within its timeout or deadline. There is no async runtime
//! inside. The protocol logic, queues, dialers and listeners are the shared driver of
//! [`sp_transport`]; this crate only supplies threads, clocks and blocking sockets.
//!
//! ```
//! # fn main() -> Result<(), sp_blocking::Error> {
//! let rep = sp_blocking::Rep::new();
//! let addr = rep.listen("tcp://127.0.0.1:0")?;
//! let req = sp_blocking::Req::new();
//! req.dial(&addr.to_string())?;
//!
//! let server = std::thread::spawn(move || -> sp_blocking::Result<()> {
//!     let request = rep.recv()?;
//!     Ok(rep.send(request.body)?)
//! });
//! assert_eq!(&req.request("ping")?.body[..], b"ping");
//! server.join().unwrap()?;
//! # Ok(()) }
//! ```
//!
//! Timeouts and deadlines bound every blocking call; a call blocked on one thread returns
//! [`Error::Closed`] when another thread closes the socket:
//!
//! ```
//! # fn main() -> Result<(), sp_blocking::Error> {
//! use std::time::{Duration, Instant};
//!
//! let pull = sp_blocking::Pull::new();
//! pull.listen("inproc://sp-blocking-doc-timeouts")?;
//! pull.set_recv_timeout(Some(Duration::from_millis(20)));
//! assert!(pull.recv().unwrap_err().is_timed_out());
//! let deadline = Instant::now() + Duration::from_millis(20);
//! assert!(pull.recv_until(deadline).unwrap_err().is_timed_out());
//!
//! let closer = pull.clone();
//! std::thread::spawn(move || {
//!     std::thread::sleep(Duration::from_millis(20));
//!     closer.close();
//! });
//! pull.set_recv_timeout(None);
//! assert!(pull.recv().unwrap_err().is_closed());
//! # Ok(()) }
//! ```
//!
//! A role's type has only the calls the role can make; `Socket::incoming` iterates over what
//! a receiving socket gets, and `Surveyor::survey` returns the responses as an iterator that
//! ends at the deadline (`Stream` and `Sink` are async-only: use sp-tokio or sp-smol).
//!
//! ```compile_fail,E0599
//! sp_blocking::Push::new().recv(); // PUSH cannot receive
//! ```
//!
//! ```compile_fail,E0599
//! sp_blocking::Sub::new().send("SUB cannot send");
//! ```
//!
//! Examples: `cargo run -p sp-blocking --example <name>` for `blocking_pipeline`,
//! `blocking_reqrep`, `blocking_pair`, `blocking_pubsub`, `blocking_survey`, `blocking_bus`
//! and `blocking_demo`.
//!
//! # Threads
//!
//! Calls run on the caller's thread. Background work runs on threads of its own, one per task
//! of the shared driver, each parked while it has nothing to do:
//!
//! | what | threads |
//! |---|---|
//! | a socket | 1: the protocol's timers (REQ resends, ...) |
//! | a listener (`listen`) | 1: blocks in `accept` |
//! | a dialer (`dial`, `dial_nonblocking`) | 1: connects, then writes to its connection |
//! | a TCP or IPC pipe | 2: a writer (the dialer's thread, or one per accepted connection) and a reader |
//! | an inproc pipe | 1 per side (a dialer's side runs on the dialer's thread) |
//! | closing with pipes attached | 1 for the linger time |
//!
//! So a dialing socket with one TCP connection has three threads: timers, the dialer (writer)
//! and the reader. Threads end when the socket closes, within the linger time.
//!
//! Request/reply and other answered traffic use none of them. `send` writes the frame to the
//! connection from the caller's thread, without blocking, after leaving the socket's lock; a
//! pipe's writer thread only writes what the kernel did not take at once, and the frames of a
//! sender that streams (sends again within microseconds with nothing received meanwhile),
//! which it batches into few writes. While a socket has one connection, a blocked `recv` reads
//! that connection itself rather than wait for the reader thread to hand a message over; the
//! reader thread reads while no caller does, so that the peer's messages and its hang-up are
//! still noticed (see [`sp_transport::threads`]).

#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod context;
mod endpoint;
mod runtime;
mod socket;

pub use context::Context;
pub use endpoint::{Dialer, Listener, PipeEvents};
pub use runtime::Threads;
pub use socket::{device, reflector, Incoming, Responses, Socket};
pub use sp_transport::bytes;
pub use sp_transport::stats;
pub use sp_transport::ContextId;
pub use sp_transport::{
    Address, ContextRole, DetachReason, DropReason, EndpointId, EndpointOptions, EndpointStats,
    Error, Message, PeerCredentials, Pipe, PipeEvent, PipeId, PipeStats, PipeVerdict, ProtocolId,
    RecvRole, RefusalReason, Result, SendResult, SendRole, SocketOptions, SocketOptionsBuilder,
    SocketStats, TlsConfig, TlsError, ToAddress, Transport, Unsent, Unsupported,
};
pub use sp_transport::{HttpHandler, HttpRequest, HttpResponse, OriginPolicy};

sp_transport::protocol_sockets!(Socket);
