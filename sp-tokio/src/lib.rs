//! Scalability Protocols sockets on tokio.
//!
//! Each protocol role is a type: [`Req`], [`Rep`], [`Push`], [`Pull`], [`Pair`], [`Pair1`],
//! [`Pair1Poly`], [`Pub`], [`Sub`], [`Bus`], [`Surveyor`], [`Respondent`], [`Star`], and the raw
//! ones that expose headers: [`XReq`], [`XRep`], [`XPair`], [`XPair1`], [`XPush`], [`XPull`],
//! [`XPub`], [`XSub`], [`XBus`], [`XSurveyor`], [`XRespondent`], [`XStar`]. REQ, REP,
//! SURVEYOR, RESPONDENT and SUB open [`Context`]s; [`device`] and [`reflector`] join raw
//! sockets. Every URL scheme works: `tcp`, `ipc`, `inproc`, `tls+tcp`, `ws`, `wss` (TLS is
//! configured with [`TlsConfig`]).
//! They all share one generic implementation ([`sp_transport::Socket`]); this crate only
//! supplies the [`Tokio`] runtime glue. Every task runs on the caller's tokio runtime: the crate
//! starts no threads of its own.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sp_tokio::Error> {
//! let rep = sp_tokio::Rep::new();
//! let addr = rep.listen("tcp://127.0.0.1:0").await?;
//! let req = sp_tokio::Req::new();
//! req.dial(&addr.to_string()).await?;
//! req.send("ping").await?;
//! let ping = rep.recv().await?;
//! rep.send(ping.body).await?;
//! assert_eq!(&req.recv().await?.body[..], b"ping");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod runtime;

pub use runtime::Tokio;
pub use sp_transport::stats;
pub use sp_transport::{
    Address, DetachReason, Dialer, DropReason, EndpointId, EndpointOptions, EndpointStats, Error,
    Listener, Message, PeerCredentials, Pipe, PipeEvent, PipeEvents, PipeId, PipeStats,
    PipeVerdict, ProtocolId, RefusalReason, Result, SocketOptions, SocketOptionsBuilder,
    SocketStats, TlsConfig, TlsError, ToAddress, Transport,
};

/// A socket of protocol `P` on tokio.
pub type Socket<P> = sp_transport::Socket<Tokio, P>;

pub use sp_transport::ContextId;

/// A context of a socket of protocol `P` on tokio: many requests, surveys or
/// subscriptions in flight on one socket (see [`sp_transport::Context`]; open one with
/// `socket.context()`).
pub type Context<P> = sp_transport::Context<Tokio, P>;

sp_transport::protocol_sockets!(Socket);

/// Devices and reflectors between raw sockets (SP-PROTOCOLS.md section 5.2); see
/// [`sp_transport::device`].
pub use sp_transport::{device, reflector};

/// The README's examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
