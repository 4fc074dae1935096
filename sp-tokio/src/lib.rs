//! Scalability Protocols sockets on tokio.
//!
//! Each protocol role is a type: [`Req`], [`Rep`], [`Push`], [`Pull`], [`Pair`], [`Pair1`],
//! [`Pair1Poly`], [`Pub`], [`Sub`], [`Bus`], [`Surveyor`], [`Respondent`], [`Star`], and the raw
//! ones that expose headers: [`XReq`], [`XRep`], [`XPair`], [`XPair1`], [`XPush`], [`XPull`],
//! [`XPub`], [`XSub`], [`XBus`], [`XSurveyor`], [`XRespondent`], [`XStar`]. REQ, REP,
//! SURVEYOR, RESPONDENT and SUB open [`Context`]s; [`device`] and [`reflector`] join raw
//! sockets. Every URL scheme works: `tcp`, `ipc`, `inproc`, `tls+tcp`, `ws`, `wss` (TLS is
//! configured with [`TlsConfig`]).
//! `ipc` is a Unix socket; on Windows it is a named pipe (`ipc://NAME` is `\\.\pipe\NAME`,
//! as in NNG).
//! They all share one generic implementation ([`sp_transport::Socket`]); this crate only
//! supplies the [`Tokio`] runtime glue. Every task runs on the caller's tokio runtime: the crate
//! starts no threads of its own.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), sp_tokio::Error> {
//! let rep = sp_tokio::Rep::new();
//! let listener = rep.listen("tcp://127.0.0.1:0").await?;
//! let req = sp_tokio::Req::new();
//! req.dial(&listener).await?;                       // a Listener, an Address or a URL
//! let server = tokio::spawn(async move {
//!     let ping = rep.recv().await?;
//!     rep.send(ping.body).await?;                   // routed back to the requester
//!     Ok::<(), sp_tokio::Error>(())
//! });
//! assert_eq!(&req.request(b"ping").await?.body[..], b"ping");
//! server.await.unwrap()?;
//! # Ok(()) }
//! ```
//!
//! # Examples
//!
//! `cargo run -p sp-tokio --example <name>`, each over real sockets on loopback and ending by
//! itself: the six patterns of "Getting Started with nanomsg", `pipeline`, `reqrep`, `pair`,
//! `pubsub`, `survey`, `bus`; `broker` (a device between clients and workers), `tls`,
//! `stream_sink` (a `Stream`/`Sink` pipeline), `operated_server` (pipe events, refusing a peer,
//! statistics) and `demo` (a tour of every transport). The same patterns run on smol
//! (`sp-smol`, `smol_*`) and without a runtime (`sp-blocking`, `blocking_*`).
//!
//! # Streams and sinks
//!
//! Receiving sockets and contexts are `futures_core::Stream`s of `Result<Message>`, sending
//! ones `futures_sink::Sink<Message>`s with real back-pressure, so `StreamExt` and `SinkExt`
//! apply (`while let Some(msg) = sub.next().await`, `pull.forward(push)`, `select_all`). A
//! survey's responses are a stream that ends at the deadline (`Surveyor::survey`).
//!
//! # Typed roles
//!
//! A role's type has only the calls the role can make: PULL has no `send`, PUSH no `recv`,
//! PAIR no `context`, a SUB context no `send`. Code that picks its protocol at run time uses
//! `send_any_role` / `recv_any_role`, which fail with [`Error::NotSupported`] instead.
//!
//! ```compile_fail,E0599
//! # async fn f() {
//! let pull = sp_tokio::Pull::new();
//! let _ = pull.send("PULL cannot send").await;
//! # }
//! ```
//!
//! ```compile_fail,E0599
//! # async fn f() {
//! let push = sp_tokio::Push::new();
//! let _ = push.recv().await; // PUSH cannot receive
//! # }
//! ```
//!
//! ```compile_fail,E0599
//! let _ = sp_tokio::Pair::new().context(); // only REQ, REP, SURVEYOR, RESPONDENT, SUB
//! ```
//!
//! ```compile_fail,E0599
//! let _ = sp_tokio::Push::new().context();
//! ```
//!
//! ```compile_fail,E0599
//! let _ = sp_tokio::Pull::new().context();
//! ```
//!
//! ```compile_fail,E0599
//! let _ = sp_tokio::Pub::new().context();
//! ```
//!
//! ```compile_fail,E0599
//! let _ = sp_tokio::Bus::new().context();
//! ```
//!
//! ```compile_fail,E0599
//! # async fn f() -> sp_tokio::Result<()> {
//! let ctx = sp_tokio::Sub::new().context()?;
//! let _ = ctx.send("a SUB context cannot send").await;
//! # Ok(()) }
//! ```
//!
//! # Cancel safety
//!
//! Every async method says in its docs whether it is cancel-safe. `send`, `recv`, their
//! `_until` forms and the context calls are: a future dropped before it completes (a timeout,
//! a losing `select!` branch) has sent or taken nothing, so nothing is lost or duplicated.

#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

#[cfg(feature = "http")]
pub mod http;
#[cfg(windows)]
mod named_pipe;
mod runtime;
mod split;

pub use runtime::Tokio;
pub use sp_transport::bytes;
pub use sp_transport::stats;
pub use sp_transport::websocket;
/// How long a receive that waits for a connection's bytes polls before it sleeps: one setting
/// for every socket of the process (see [`sp_transport::set_busy_poll_limit`]).
pub use sp_transport::{busy_poll_limit, set_busy_poll_limit, DEFAULT_BUSY_POLL};
pub use sp_transport::{
    Address, ContextRole, DetachReason, Dialer, DropReason, EndpointId, EndpointOptions,
    EndpointStats, Error, Listener, Message, MessageConnection, OriginPolicy, PeerCredentials,
    Pipe, PipeEvent, PipeEvents, PipeId, PipeStats, PipeVerdict, ProtocolId, RecvRole,
    RefusalReason, Responses, Result, SendResult, SendRole, SocketOptions, SocketOptionsBuilder,
    SocketStats, TlsConfig, TlsError, ToAddress, Transport, Unsent, Unsupported, UpgradeRefusal,
};
pub use sp_transport::{HttpHandler, HttpRequest, HttpResponse};

/// A socket of protocol `P` on tokio.
pub type Socket<P> = sp_transport::Socket<Tokio, P>;

pub use sp_transport::ContextId;

/// A context of a socket of protocol `P` on tokio: many requests, surveys or
/// subscriptions in flight on one socket (see [`sp_transport::Context`]; open one with
/// `socket.context()`).
pub type Context<P> = sp_transport::Context<Tokio, P>;

/// One wait on the receives of many sockets and contexts on tokio, returning the first
/// message with the key its source was added under (see [`sp_transport::RecvSet`]); also a
/// `Stream` of `(key, result)`.
pub type RecvSet<K> = sp_transport::RecvSet<Tokio, K>;

sp_transport::protocol_sockets!(Socket);

/// Devices and reflectors between raw sockets (SP-PROTOCOLS.md section 5.2); see
/// [`sp_transport::device`].
pub use sp_transport::{device, reflector};

/// The README's examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
