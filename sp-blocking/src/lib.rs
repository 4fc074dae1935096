//! Scalability Protocols sockets with plain blocking calls, on std sockets and threads.
//!
//! Each protocol role is a type: [`Req`], [`Rep`], [`Push`], [`Pull`], [`Pair`], [`Pair1`],
//! [`Pair1Poly`], [`Pub`], [`Sub`], [`Bus`], [`Surveyor`], [`Respondent`], [`Star`], and the raw
//! ones that expose headers: [`XReq`], [`XRep`], [`XPair`], [`XPair1`], [`XPush`], [`XPull`],
//! [`XPub`], [`XSub`], [`XBus`], [`XSurveyor`], [`XRespondent`], [`XStar`]. REQ, REP,
//! SURVEYOR, RESPONDENT and SUB open [`Context`]s; a [`RecvSet`] waits on many sockets and
//! contexts from one thread (as `nn_poll` and `zmq_poll` do); [`device`] and [`reflector`]
//! join raw sockets. Every URL scheme works: `tcp`, `ipc`, `inproc`, `tls+tcp`, `ws`, `wss` (TLS is
//! configured with [`TlsConfig`]).
//! On Windows, where `ipc` is a named pipe, it fails with [`Error::Unsupported`]
//! ([`Unsupported::NamedPipes`]): use `sp-tokio` for named pipes.
//! They have the methods of the `sp-tokio` sockets, with the same options and the same
//! [`Error`], as blocking calls: `send` returns once a peer's queue took the message, `recv`
//! once a message arrived, each within its timeout or deadline. There is no async runtime
//! for the application to run. The protocol logic, queues, dialers and listeners are the shared
//! driver of [`sp_transport`]; this crate runs it on a small fixed pool of threads (see
//! [Threads](#threads)) and blocks the caller until its call completes.
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
//! `blocking_reqrep`, `blocking_pair`, `blocking_pubsub`, `blocking_survey`, `blocking_bus`,
//! `blocking_many_requests` (50 requests in flight from one thread through a [`RecvSet`])
//! and `blocking_demo`.
//!
//! # Threads
//!
//! Calls run on the caller's thread. Background work (the protocols' timers, dialers,
//! listeners, and reading and writing every connection) runs as tasks on one small pool that
//! every sp-blocking socket of the process shares, whatever the number of sockets, endpoints
//! and pipes, and whatever the transport (TCP, IPC, inproc, TLS, WebSocket):
//!
//! | thread | count | what it does |
//! |---|---|---|
//! | `async-io` | 1 | async-io's reactor: waits for readiness of every connection and for timers (epoll, kqueue, event ports or IOCP, through the `polling` crate) |
//! | `sp-blocking` | 2 | the workers: run the driver's tasks from the pool's run queue |
//!
//! So a process has at most 3 threads of sp-blocking's, for 1 pipe as for 10,000. The pool
//! starts with the first socket and its threads stay, parked, until the process exits (as
//! NNG's do); closing a socket ends its tasks. A worker that runs out of tasks looks for
//! more for up to 50 µs before it parks (yielding the CPU after the first few rounds), so
//! that a pipe's writer, woken again by the next sends, costs no thread wake-up. A dial to a
//! host name (not an IP address) resolves it on a short-lived thread of its own.
//!
//! A `send` returns once its message is queued. The pipe's writer then runs 10 µs later on
//! a worker (which sleeps until then), or at once on the caller's thread if the caller goes
//! on to wait in a call of its own (a `recv`, a request's reply, a send into a full queue):
//! the sends of a loop go out together, and a request goes out before its caller waits for
//! the reply. A thread that sends a stream (more than 64 sends with no other call between)
//! writes it itself, in batches of about 100 small messages (PUB, BUS) or 256 (the roles
//! whose sends wait for room); a worker writes what is left at most 200 µs after the
//! stream's sends woke the writer. On Linux, over plain `tcp` and `ipc`, a send that answers
//! what the pipe delivered (a reply, or the request after a reply), when nothing else is
//! queued for the pipe, writes its message to the socket itself before it returns.
//!
//! A `recv` that takes a message from a queue that was full resumes the pipe that waited for
//! room; that pipe's reader likewise runs on the caller's thread when it next waits for a
//! message, or on a worker 10 µs later, not at once on a worker that would deliver into the
//! queue while the caller takes from it.
//!
//! A blocking call polls its work on the caller's thread. A `recv` on a socket with one plain
//! `tcp` or `ipc` pipe that finds nothing reads that connection itself, for up to 20 µs
//! ([`set_busy_poll_limit`]), before it waits as below: the reply that comes meanwhile is read
//! and delivered on the caller's thread, with no reader task woken (as on tokio and smol; not
//! for contexts, nor for SUB, BUS, STAR and SURVEYOR). A call that must wait first runs the
//! pool's ready tasks itself (such as the writer of the request whose reply it waits for).
//! Then, on Linux, if at most 16 connections of the process have a reader waiting for bytes, it
//! polls those that no other waiting call watches, and an eventfd of its thread, on the CPU for
//! up to 20 µs ([`set_busy_poll_limit`]; while fewer than one call per core does so), and then
//! sleeps in `poll(2)` on them, so that the reply that comes within microseconds costs no
//! sleep, and a later one wakes the caller itself (the kernel does), and the caller reads it
//! (one watcher per connection: many threads waiting on the contexts of one connection are
//! woken one by one, each by what is delivered to it, not all by each reply). Otherwise
//! (inproc, more pipes, other platforms) it spins for up to 50 µs, running the pool's queued
//! tasks and polling its own work, and while any call spins no sleeping worker is woken for a
//! new task (an inproc round trip between two blocking threads then takes no wake-up at all);
//! at most one call per core spins, and a call still waiting after that, or that finds that
//! many spinning, sleeps in `async_io::block_on`, driving the reactor when no other thread
//! does. Tasks of other sockets may run on a caller's thread too: a pipe hook
//! ([`Socket::set_pipe_hook`]) runs on a pool thread or on a thread blocked in some sp-blocking
//! call, so it must not block nor take a lock that such a caller may hold.
//!
//! Threads blocked in `recv` on one socket (a pool of workers on one PULL socket) take
//! turns: one waits in the socket, the others sleep in a queue, first come, first served, and
//! each return from the socket hands the turn to the thread that has waited longest. A
//! message so wakes one thread, not every one blocked on the socket; a thread that comes back
//! for more takes what is queued before it joins the queue, and each keeps its own timeout.
//! Contexts need no turns: a context's messages wake only its own receive.
//!
//! A socket that drops what its full queue cannot take (SUB, BUS, STAR, SURVEYOR) waits for
//! the thread a delivery woke: the pipe that woke it delivers nothing more until a receive
//! takes a message, and keeps what arrives meanwhile in its buffers and its connection's.
//! Without that wait, the pipe's task ran again on a pool thread long before the woken
//! thread did, and one read of a few hundred small messages overflowed a SUB's queue of 128
//! (subscribers paced at about half of what they can take lost 1–6 % of the messages, and
//! 0.1–0.6 % with the wait).
//!
//! A call's timeout or deadline is kept by the thread that waits: it bounds the spin and is
//! the time-out of the `poll(2)`, so a wait with a deadline costs what one without does. Only
//! a call that goes on to sleep in `async_io::block_on` arms a reactor timer (async-io wakes
//! its thread for each one: a REQ/REP round trip over inproc with a receive timeout took
//! 12–13 µs that way, against 4 µs now, the same as without one).
//!
//! If the pool cannot start (the OS refuses a thread, or async-io its poller), every call
//! that needs it returns [`Error::Io`] ("cannot start sp-blocking's threads") and the next
//! call tries again; nothing stalls silently. (async-io reports a poller or thread it cannot
//! create by panicking: a program built with `panic = "abort"` aborts instead.)

#![warn(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]

mod context;
mod deadline;
#[cfg(target_os = "linux")]
mod direct;
mod endpoint;
mod pool;
mod readiness;
mod recv_set;
mod runtime;
mod socket;
mod turns;

pub use context::Context;
pub use endpoint::{Dialer, Listener, PipeEvents};
pub use recv_set::RecvSet;
pub use runtime::Threads;
pub use socket::{device, reflector, Incoming, Responses, Socket};
pub use sp_transport::bytes;
pub use sp_transport::stats;
pub use sp_transport::ContextId;
pub use sp_transport::{busy_poll_limit, set_busy_poll_limit, DEFAULT_BUSY_POLL};
pub use sp_transport::{
    Address, ContextRole, DetachReason, DropReason, EndpointId, EndpointOptions, EndpointStats,
    Error, Message, PeerCredentials, Pipe, PipeEvent, PipeId, PipeStats, PipeVerdict, ProtocolId,
    RecvRole, RefusalReason, Result, SendResult, SendRole, SocketOptions, SocketOptionsBuilder,
    SocketStats, TlsConfig, TlsError, ToAddress, Transport, Unsent, Unsupported,
};
pub use sp_transport::{HttpHandler, HttpRequest, HttpResponse, OriginPolicy};

sp_transport::protocol_sockets!(Socket);
