//! Scalability Protocols sockets on smol / async-io.
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
//! The names are the same as in `sp-tokio`. They all share one generic implementation
//! ([`sp_transport::Socket`]); this crate only supplies the [`Smol`] runtime glue.
//!
//! Sockets made with `new()` spawn their tasks (pipes, dialers, listeners, timers) on smol's
//! global executor (`smol::spawn`), which starts its own threads on first use (one by default,
//! `SMOL_THREADS` for more). [`Smol::with_executor`] with [`Socket::with_runtime`] puts them on
//! an executor you run instead. Either way the socket methods can be awaited from any
//! executor, or from `smol::block_on`.
//!
//! ```no_run
//! # fn main() -> Result<(), sp_smol::Error> {
//! smol::block_on(async {
//!     let rep = sp_smol::Rep::new();
//!     let addr = rep.listen("tcp://127.0.0.1:0").await?;
//!     let req = sp_smol::Req::new();
//!     req.dial(&addr.to_string()).await?;
//!     req.send("ping").await?;
//!     let ping = rep.recv().await?;
//!     rep.send(ping.body).await?;
//!     assert_eq!(&req.recv().await?.body[..], b"ping");
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Examples: `cargo run -p sp-smol --example <name>` for `smol_pipeline`, `smol_reqrep`,
//! `smol_pair`, `smol_pubsub`, `smol_survey`, `smol_bus`, `smol_stream_sink` and `smol_demo`.
//!
//! Sockets and contexts are `Stream`s and `Sink`s as in `sp-tokio`, and a role's type has only
//! the calls the role can make:
//!
//! ```compile_fail,E0599
//! # async fn f() {
//! let _ = sp_smol::Pull::new().send("PULL cannot send").await;
//! # }
//! ```
//!
//! ```compile_fail,E0599
//! # async fn f() {
//! let _ = sp_smol::Pub::new().recv().await; // PUB cannot receive
//! # }
//! ```

#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod runtime;
mod stream;

pub use runtime::Smol;
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

/// A socket of protocol `P` on smol.
pub type Socket<P> = sp_transport::Socket<Smol, P>;

pub use sp_transport::ContextId;

/// A context of a socket of protocol `P` on smol: many requests, surveys or
/// subscriptions in flight on one socket (see [`sp_transport::Context`]; open one with
/// `socket.context()`).
pub type Context<P> = sp_transport::Context<Smol, P>;

/// One wait on the receives of many sockets and contexts on smol, returning the first
/// message with the key its source was added under (see [`sp_transport::RecvSet`]); also a
/// `Stream` of `(key, result)`.
pub type RecvSet<K> = sp_transport::RecvSet<Smol, K>;

sp_transport::protocol_sockets!(Socket);

/// Devices and reflectors between raw sockets (SP-PROTOCOLS.md section 5.2); see
/// [`sp_transport::device`].
pub use sp_transport::{device, reflector};
