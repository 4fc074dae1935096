//! Pipes: the per-connection half of the driver.
//!
//! A [`PipeHandle`] is shared between a socket (which queues outgoing messages on it) and the
//! task that moves bytes. [`StreamPipe`] serves TCP and IPC: one task per connection that
//! batches every queued frame into vectored writes and decodes many frames per read.
//! [`InprocPipe`] links two sockets in one process with no bytes at all.
//!
//! Lock order: a socket's state lock may be held while taking a pipe's queue lock, never the
//! other way round, and no lock is held across an await or a call into another socket.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use futures_io::AsyncWrite;
use futures_util::task::AtomicWaker;
use sp_core::frame::{encode, encode_prefix, FrameDecoder, FrameKind};
use sp_core::{Message, PipeId, ProtocolId};

use crate::pipe_events::DetachReason;
use crate::pipe_runner::PipeRunner;
use crate::pipe_view::{PipeCounters, PipeInfo};
use crate::read_buffer::ReadBuffer;
use crate::rt::{BoxStream, DirectReader, DirectWriter};
use crate::stats::{PipeStats, RefusalReason};

/// A pipe's queue reports "full" to its socket at this many messages by default (the
/// socket's `send_buffer` changes it)...
pub(crate) const QUEUE_HIGH_WATER_MSGS: usize = 256;
/// ...or at this many bytes, whichever comes first. Together they bound per-pipe memory.
const QUEUE_HIGH_WATER_BYTES: usize = 1 << 20;
/// Messages up to this size are copied into one contiguous write buffer; larger bodies are
/// written in place with vectored IO so that they are never copied.
const COALESCE_MAX: usize = 16 * 1024;
/// The largest read of a busy pipe. A frame larger than this reads directly into the frame
/// buffer once that much of it has arrived.
///
/// 32 KiB, not 64: a busy pipe's memory is its read buffer plus the read buffers its queued
/// messages still share, a few of this size. Measured on a tcp 64 B throughput run, the
/// receiver's anonymous memory grew by about 650 KiB with 64 KiB reads, 360 KiB with 32 KiB
/// and 210 KiB with 16 KiB; 64 B throughput did not move, while 16 KiB reads cost the 1400 B
/// row 17 % (BENCHMARKS.md, "Memory").
const READ_CHUNK: usize = 32 * 1024;
/// A pipe's first read size, and the size of each thread's scratch buffer: the read size
/// doubles (up to [`READ_CHUNK`]) each time a read fills it, so a busy pipe soon reads in large
/// chunks while a quiet or hostile one costs little.
const SCRATCH_MIN: usize = 4 * 1024;
/// Frames above this size never make the read size grow (see [`Inbound::fill`]).
const LARGE_FRAME: usize = 256 * 1024;
/// Upper bound on one read's buffer growth.
const READ_MAX: usize = 1 << 20;
/// iovecs per vectored write.
const MAX_IOVECS: usize = 64;
/// The most messages a stream pipe hands its socket's core under one lock (see
/// [`Inbound::deliver`]), and any pipe whose delivery may pause it for the receiver it woke
/// (see `Shared::deliver`).
pub(crate) const DELIVER_BATCH: usize = 64;
/// Received frames up to this size are copied out of the read buffer (see
/// [`decode_frames`]).
const OWN_BUFFER_MAX: usize = 512;

/// Rounds of read/write work in one poll before yielding to other tasks.
const POLL_BUDGET: usize = 32;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks is a bug already reported by that panic; the data
    // behind these locks stays structurally valid, so carry on rather than cascade.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a pipe ended, for logs.
#[derive(Debug)]
pub(crate) enum PipeEnd {
    /// Our side (the socket or its core) asked for the close.
    Local,
    /// The peer closed the connection.
    PeerClosed,
    /// The peer broke the framing rules.
    BadFrame(sp_core::frame::FrameError),
    /// The operating system reported an error.
    Io(io::Error),
    /// The peer broke the transport's rules in another way (a WebSocket text message, a
    /// protocol violation).
    Refused(String),
    /// The peer sent a message over the receive size limit (WebSocket; a stream transport
    /// reports it as `BadFrame(TooLarge)`).
    TooLarge(String),
}

impl PipeEnd {
    /// Whether the pipe ended because the peer sent a message over the receive limit.
    pub(crate) fn is_too_large(&self) -> bool {
        matches!(
            self,
            PipeEnd::TooLarge(_) | PipeEnd::BadFrame(sp_core::frame::FrameError::TooLarge { .. })
        )
    }

    pub(crate) fn detach_reason(&self) -> DetachReason {
        match self {
            PipeEnd::Local => DetachReason::Local,
            PipeEnd::PeerClosed => DetachReason::PeerClosed,
            PipeEnd::BadFrame(e) => DetachReason::PeerMisbehaved(e.to_string()),
            PipeEnd::Refused(why) | PipeEnd::TooLarge(why) => {
                DetachReason::PeerMisbehaved(why.clone())
            }
            PipeEnd::Io(e) => DetachReason::Io(e.to_string()),
        }
    }
}

/// The socket side of a pipe, as seen by pipe tasks. Implemented by the driver's socket.
pub(crate) trait PipeOwner: Send + Sync + 'static {
    /// Allocates an ID for a pipe about to be attached.
    fn allocate_pipe_id(&self) -> PipeId;
    /// Attaches a handshaken pipe (its peer's protocol is in its info), after the pipe hook
    /// accepted it. On refusal (the hook, a closed socket) the pipe must not run.
    fn attach(&self, handle: Arc<PipeHandle>) -> Result<(), RefusalReason>;
    /// Counts a connection a listener of this socket accepted (`endpoint`'s, too).
    fn accepted(&self, endpoint: &crate::endpoint::EndpointCtl);
    /// The socket's tracing span, parent of the spans of pipes that have no endpoint.
    fn span(&self) -> tracing::Span;
    /// Counts a connection refused before it became a pipe, for the endpoint that had it.
    fn refused(&self, endpoint: Option<crate::pipe_view::EndpointId>, reason: RefusalReason);
    /// Feeds messages from `next` while the core keeps receiving from `pipe`; marks the handle
    /// paused when the core paused the pipe.
    fn deliver(&self, pipe: &PipeHandle, next: &mut dyn FnMut() -> Option<Message>) -> Delivery;
    /// The pipe's queue has room again.
    fn pipe_writable(&self, pipe: PipeId);
    /// The pipe is gone, and why.
    fn pipe_closed(&self, pipe: PipeId, end: &PipeEnd);
    /// The socket's SP type.
    fn protocol(&self) -> ProtocolId;
    /// The SP type the socket's peers must have.
    fn peer_protocol(&self) -> ProtocolId;
    /// Whether the socket has been closed.
    fn is_closed(&self) -> bool;
    /// Whether the socket's receivers run on threads of their own
    /// ([`Runtime::receivers_have_own_threads`](crate::rt::Runtime::receivers_have_own_threads)).
    fn receivers_have_own_threads(&self) -> bool;
    /// Whether the socket's receiving tasks may poll its pipes (see `crate::pipe_runner`):
    /// a stream pipe then runs in its handle's [`PipeRunner`], otherwise as a plain task.
    fn receivers_poll_pipes(&self) -> bool {
        false
    }
}

/// What one delivery into a socket's core did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The core still receives from the pipe (false: it paused the pipe).
    pub(crate) receiving: bool,
    /// How many tasks waiting to receive the delivery woke (see [`Delivery::woke_receiver`]
    /// and [`Delivery::woke_several`]).
    pub(crate) receivers_woken: usize,
    /// How many messages the core took.
    pub(crate) messages: u64,
}

impl Delivery {
    /// The delivery woke a task waiting to receive. A stream pipe's task then lets it run
    /// before delivering more: a receive queue that drops when full (SUB) would otherwise fill
    /// from one large read before the application had a turn to empty it. An inproc pipe's
    /// task delivers on unless the receivers have threads of their own (see `InprocPipe`).
    /// Where they do, a socket whose queue drops when full pauses the pipe until a receive
    /// takes a message (`Shared::deliver`): a yield would not wait for another thread.
    pub(crate) fn woke_receiver(&self) -> bool {
        self.receivers_woken > 0
    }

    /// The delivery woke more than one receiving task (REQ/REP contexts, say): an inproc
    /// pipe then lets them run before it delivers more, so that their replies go out together.
    pub(crate) fn woke_several(&self) -> bool {
        self.receivers_woken > 1
    }

    /// The delivery woke a receiver with a single message: the pipe lets that receiver run
    /// next on this thread instead of yielding to it, once nothing more is buffered (see
    /// `StreamPipe::after_waking_receiver`, which both stream and WebSocket pipes follow).
    /// After several messages the pipe yields, so that the receivers woken then (contexts)
    /// reply before it writes, in one write.
    pub(crate) fn woke_one_receiver(&self) -> bool {
        self.woke_receiver() && self.messages == 1
    }
}

#[derive(Default)]
struct PipeQueue {
    /// Small messages already framed for the stream, in order, ahead of everything in `out`
    /// (see [`PipeHandle::frame_on_enqueue`]).
    framed: BytesMut,
    /// How many messages `framed` holds.
    framed_msgs: usize,
    /// The stream's framing, when the sending side frames small messages itself.
    framing: Option<FrameKind>,
    out: VecDeque<Message>,
    out_bytes: usize,
    /// Messages and bytes queued for writing since the pipe opened (its statistics).
    msgs_out: u64,
    bytes_out: u64,
    /// Messages handed back to the protocol when the pipe closed.
    returned: u64,
    /// The owner's core is waiting for `PipeWritable`.
    blocked: bool,
    /// The task that drains `out`.
    consumer: Option<Waker>,
    /// The task that feeds the owner's core from this pipe.
    feeder: Option<Waker>,
    /// The connection's writing side, for a sending task to write a message itself while
    /// the pipe's task has nothing to write (see [`PipeHandle::write_directly`]); `None` for
    /// connections that only the pipe's task writes, and once the pipe is closed.
    direct: Option<DirectWriter>,
    /// Bytes of the first message in `framed` that a direct write left unwritten (the rest
    /// is on the wire already): the pipe's task writes them, and they are never handed back.
    head_rest: usize,
}

impl PipeQueue {
    /// Messages waiting to be written, framed or not.
    fn queued(&self) -> usize {
        self.framed_msgs + self.out.len()
    }
}

/// One pipe's shared state: its outgoing queue and control flags.
pub(crate) struct PipeHandle {
    pub(crate) id: PipeId,
    /// What the transport learned when the pipe connected.
    pub(crate) info: PipeInfo,
    pub(crate) counters: PipeCounters,
    q: Mutex<PipeQueue>,
    /// Close requested (by the socket) or the pipe task has ended.
    ///
    /// This flag and `draining` are atomics, read without the queue lock: the pipe's task
    /// checks both on every turn, and taking the lock for that pulled it away from the thread
    /// that sends. They are only set while that lock is held, so a reader holding it sees
    /// them as they are.
    closed: AtomicBool,
    /// The socket is closing: write out what is queued, deliver nothing more, then close.
    draining: AtomicBool,
    /// The owner's core stopped receiving from this pipe. Written only under the queue's
    /// lock, read without it: the pipe's task asks at every delivery, and the queue's lock is
    /// the one the pipe's sender (on another thread, say) takes for every message; a read of
    /// a flag that rarely changes costs no cache miss when the sender took the lock last.
    paused: AtomicBool,
    /// The pipe's task, woken when the pipe closes or starts draining.
    task: AtomicWaker,
    /// The pipe delivered a message since the last direct write: the next send answers it
    /// (see [`PipeHandle::write_directly`]).
    answer_due: AtomicBool,
    /// A stream pipe's future, which receiving tasks may poll too.
    pub(crate) runner: PipeRunner,
}

pub(crate) struct TakeOutcome {
    /// The queue had been full: tell the queue's owner it is writable again.
    pub(crate) was_blocked: bool,
}

impl PipeHandle {
    pub(crate) fn new(id: PipeId, info: PipeInfo) -> Arc<Self> {
        Arc::new(Self {
            id,
            info,
            counters: PipeCounters::default(),
            q: Mutex::new(PipeQueue::default()),
            closed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            task: AtomicWaker::new(),
            answer_due: AtomicBool::new(false),
            runner: PipeRunner::default(),
        })
    }

    /// Makes the sending side frame small messages (up to [`COALESCE_MAX`]) for a stream of
    /// `kind` as it queues them, instead of leaving that to the pipe's writer.
    ///
    /// Why: a message's bytes are then copied, and the message dropped, on the thread that
    /// sent it. Dropped by the writer on another thread, each message's reference count (one
    /// count for every clone of a buffer sent repeatedly) moved between two cores per send,
    /// and memory allocated by the sender was freed by the writer.
    pub(crate) fn frame_on_enqueue(&self, kind: FrameKind) {
        lock(&self.q).framing = Some(kind);
    }

    /// Queues a message and wakes the pipe's writer if it waits. Returns true while the
    /// queue has room for more: fewer than `max_msgs` messages and less than 1 MiB.
    #[cfg(test)]
    pub(crate) fn enqueue(&self, msg: Message, max_msgs: usize) -> bool {
        let (room, writer) = self.enqueue_leaving_wake(msg, max_msgs);
        if let Some(w) = writer {
            w.wake();
        }
        room
    }

    /// Queues a message. Returns whether the queue has room for more (fewer than `max_msgs`
    /// messages and less than 1 MiB), and the waker of the pipe's writer if it waits, which
    /// the caller wakes: the socket does once its own lock is released, so that a writer
    /// started on another thread does not wait for that lock, nor take the queue's lock from
    /// a batch of sends still queuing (`Socket::send_many`).
    pub(crate) fn enqueue_leaving_wake(
        &self,
        msg: Message,
        max_msgs: usize,
    ) -> (bool, Option<Waker>) {
        let mut q = lock(&self.q);
        // A closed pipe still queues: the message goes back to the protocol with the rest
        // when the pipe detaches, a moment later.
        let len = msg.len();
        q.msgs_out += 1;
        q.bytes_out += len as u64;
        q.out_bytes += len;
        // Framed bytes go out ahead of `out`, so only while `out` is empty. A framed message
        // is dropped once the lock is released.
        let framed_msg = match q.framing {
            Some(kind) if len <= COALESCE_MAX && q.out.is_empty() => {
                encode(kind, &msg, &mut q.framed);
                q.framed_msgs += 1;
                Some(msg)
            }
            _ => {
                q.out.push_back(msg);
                None
            }
        };
        // Framed (so nothing unframed waits), the only one, and the pipe's task waits for it:
        // the rest of the test, and the write, out of this hot path.
        let written = framed_msg.is_some()
            && q.framed_msgs == 1
            && q.consumer.is_some()
            && self.write_directly(&mut q, len);
        let consumer = if self.is_closed() || written {
            None
        } else {
            q.consumer.take()
        };
        let room = q.queued() < max_msgs && q.out_bytes < QUEUE_HIGH_WATER_BYTES;
        if !room {
            q.blocked = true;
        }
        drop(q);
        // Woken after the lock is released (by the caller): waking may schedule the writer
        // on another thread at once (a futex wake-up on sp-blocking's pool), which would then
        // wait for this lock in its first `take_framed`.
        drop(framed_msg);
        (room, consumer)
    }

    /// Writes the message just framed (the only bytes queued, `len` its length, the pipe's
    /// task idle on its writing side: `enqueue` checked both) to the connection on the
    /// sending task, when that answers a delivery: the connection has a writer for any task
    /// ([`ConnInfo::direct`](crate::rt::ConnInfo::direct)), and the pipe delivered a message
    /// since the last direct write. Returns true when the whole message went out; otherwise
    /// what is left stays queued for the pipe's task.
    ///
    /// Why: in a request/reply exchange, a reply queued for the pipe's task cost a wake-up
    /// and a poll of that task before its write, on every message (tcp 64 B one-way latency
    /// 7.97–8.27 µs against 7.52–7.93 with the write on the sending task). Only a send that
    /// answers a delivery writes at once: a stream of sends written one by one would cost a
    /// system call each, where the pipe's task writes what queued meanwhile together.
    #[inline(never)]
    fn write_directly(&self, q: &mut PipeQueue, len: usize) -> bool {
        if q.direct.is_none() || self.is_closed() || !self.answer_due.swap(false, Ordering::Relaxed)
        {
            return false;
        }
        // The pipe's task writes only what it took under the queue's lock, which this holds:
        // the two never write at once. Should the connection not take everything, the pipe's
        // task is woken and writes the rest.
        let Some(n) = q.direct.as_ref().and_then(|d| d.try_write(&q.framed)) else {
            return false;
        };
        q.framed.advance(n);
        if !q.framed.is_empty() {
            q.head_rest = q.framed.len();
            return false;
        }
        q.framed_msgs = 0;
        q.out_bytes -= len;
        true
    }

    /// Marks that this pipe delivered a message: the next send may answer it on the sending
    /// task (see [`PipeHandle::write_directly`]).
    pub(crate) fn delivered(&self) {
        self.answer_due.store(true, Ordering::Relaxed);
    }

    /// Lets a sending task write to the connection through `writer` while the pipe's task is
    /// idle on its writing side (see [`PipeHandle::write_directly`]).
    pub(crate) fn share_writer(&self, writer: DirectWriter) {
        lock(&self.q).direct = Some(writer);
    }

    /// Moves every queued message into `into`; registers `waker` if there was none. For
    /// pipes that do not [frame on enqueue](Self::frame_on_enqueue).
    pub(crate) fn take_out(&self, into: &mut VecDeque<Message>, waker: &Waker) -> TakeOutcome {
        self.take_unframed(into, waker, false)
    }

    /// [`take_out`](Self::take_out), registering `waker` for the next message even when
    /// there were some (`watch`): the next enqueue wakes it, with no second take to register.
    fn take_unframed(
        &self,
        into: &mut VecDeque<Message>,
        waker: &Waker,
        watch: bool,
    ) -> TakeOutcome {
        let mut spare = BytesMut::new();
        let outcome = self.take_framed(&mut spare, into, waker, watch);
        debug_assert!(spare.is_empty(), "only stream pipes frame on enqueue");
        outcome
    }

    /// Moves the framed bytes into `framed` (which must be empty; its buffer is kept for the
    /// next ones) and every other queued message, which follows them, into `into`; registers
    /// `waker` if nothing was queued, or always with `watch`.
    fn take_framed(
        &self,
        framed: &mut BytesMut,
        into: &mut VecDeque<Message>,
        waker: &Waker,
        watch: bool,
    ) -> TakeOutcome {
        let mut q = lock(&self.q);
        let empty = q.out.is_empty() && q.framed.is_empty();
        if empty || watch {
            set_waker(&mut q.consumer, waker);
        }
        if empty {
            return TakeOutcome { was_blocked: false };
        }
        std::mem::swap(&mut q.framed, framed);
        q.framed_msgs = 0;
        q.head_rest = 0;
        std::mem::swap(&mut q.out, into);
        q.out_bytes = 0;
        if self.is_draining() {
            // The owner's side of an inproc link waits for its queue to empty before ending.
            if let Some(w) = q.feeder.take() {
                w.wake();
            }
        }
        let was_blocked = std::mem::take(&mut q.blocked);
        TakeOutcome { was_blocked }
    }

    pub(crate) fn set_paused(&self) {
        let _q = lock(&self.q);
        self.paused.store(true, Ordering::Release);
    }

    /// Resumes a paused pipe. Returns its feeder's waker, for the caller to wake once it
    /// holds no lock: the socket resumes its pipes under its own lock, and a wake-up there
    /// (on tokio, often another worker's unpark, a system call) kept both this queue's lock
    /// and the socket's held while the pipe's task, woken or polled meanwhile, waited for them.
    #[must_use = "the feeder waits for this wake-up"]
    pub(crate) fn resume(&self) -> Option<Waker> {
        let mut q = lock(&self.q);
        self.paused.store(false, Ordering::Release);
        q.feeder.take()
    }

    /// Returns true if the pipe may deliver; otherwise registers `waker` for the resume.
    ///
    /// Takes the queue's lock only when the pipe was paused: a pause and its resume both
    /// happen under that lock, so the feeder registered there is never missed.
    pub(crate) fn poll_resumed(&self, waker: &Waker) -> bool {
        if !self.paused.load(Ordering::Acquire) {
            return true;
        }
        let mut q = lock(&self.q);
        if self.paused.load(Ordering::Acquire) && !self.is_closed() {
            set_waker(&mut q.feeder, waker);
            false
        } else {
            true
        }
    }

    /// Asks the pipe to write out what is queued and then close (the socket is closing).
    pub(crate) fn drain(&self) {
        let mut q = lock(&self.q);
        self.draining.store(true, Ordering::Release);
        let (a, b) = (q.consumer.take(), q.feeder.take());
        drop(q);
        for w in [a, b].into_iter().flatten() {
            w.wake();
        }
        self.task.wake();
    }

    /// Returns true once a draining pipe's queue is empty; registers `waker` otherwise.
    pub(crate) fn poll_drained(&self, waker: &Waker) -> bool {
        let mut q = lock(&self.q);
        if self.is_draining() && q.queued() == 0 {
            return true;
        }
        set_waker(&mut q.feeder, waker);
        false
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Returns true once the pipe is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Counts `n` messages lost with the pipe (queued to or from it when it ended); the
    /// socket adds them to its `PipeClosed` drops when the pipe detaches.
    pub(crate) fn count_lost(&self, n: usize) {
        self.counters
            .dropped_on_close
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Returns the pipe's counters now.
    pub(crate) fn stats(&self) -> PipeStats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.counters;
        let q = lock(&self.q);
        PipeStats {
            msgs_in: c.msgs_in.load(Relaxed),
            bytes_in: c.bytes_in.load(Relaxed),
            msgs_out: q.msgs_out,
            bytes_out: q.bytes_out,
            queued: q.queued(),
            returned: q.returned,
            dropped_on_close: c.dropped_on_close.load(Relaxed),
        }
    }

    /// Takes every message still queued (never written) from a closed pipe, in order, to hand
    /// back to the protocol (`Input::Unsent`).
    pub(crate) fn take_unsent(&self) -> VecDeque<Message> {
        let mut q = lock(&self.q);
        debug_assert!(self.is_closed(), "only a closed pipe gives its queue back");
        q.out_bytes = 0;
        let mut unsent = VecDeque::with_capacity(q.queued());
        if let Some(kind) = q.framing {
            // Unframed again, header and body joined: the same bytes on the wire.
            let mut framed = std::mem::take(&mut q.framed);
            // A message partly written already is neither sent nor unsent: it is lost.
            let head_rest = std::mem::take(&mut q.head_rest);
            if head_rest > 0 {
                framed.advance(head_rest);
                self.count_lost(1);
            }
            let mut decoder = FrameDecoder::new(kind, 0);
            while let Ok(Some(wire)) = decoder.decode(&mut framed) {
                unsent.push_back(Message::new(wire));
            }
            debug_assert!(framed.is_empty(), "framed bytes hold whole frames");
            q.framed_msgs = 0;
        }
        unsent.append(&mut q.out);
        q.returned += unsent.len() as u64;
        unsent
    }

    /// Returns how many messages wait in the queue.
    pub(crate) fn queued(&self) -> usize {
        lock(&self.q).queued()
    }

    /// Asks the pipe's tasks to stop at once; what is queued waits for [`Self::take_unsent`].
    /// Idempotent.
    pub(crate) fn close(&self) {
        let mut q = lock(&self.q);
        self.closed.store(true, Ordering::Release);
        // The connection closes when the pipe's task drops its stream, not later.
        q.direct = None;
        // What is queued stays: the socket hands it back to its protocol when the pipe
        // detaches (`take_unsent`), so that PUSH re-routes it and REQ resends at once.
        let (a, b) = (q.consumer.take(), q.feeder.take());
        drop(q);
        for w in [a, b].into_iter().flatten() {
            w.wake();
        }
        self.task.wake();
    }

    /// Returns true once closed; otherwise registers `waker` as the pipe's task, which
    /// [`close`](Self::close) and [`drain`](Self::drain) wake. Takes no lock.
    pub(crate) fn poll_closed(&self, waker: &Waker) -> bool {
        if self.is_closed() {
            return true;
        }
        self.task.register(waker);
        self.is_closed()
    }
}

pub(crate) fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// Runs a stream pipe until it ends, then detaches it from its socket.
pub(crate) async fn run_stream_pipe(pipe: StreamPipe) {
    let owner = pipe.owner.clone();
    let handle = pipe.handle.clone();
    let end = if owner.receivers_poll_pipes() {
        handle.runner.run(pipe).await
    } else {
        pipe.await
    };
    end_pipe(&*owner, &handle, &end);
}

/// Closes a pipe whose task ended, logs why inside the pipe's span, and detaches it.
pub(crate) fn end_pipe(owner: &dyn PipeOwner, handle: &PipeHandle, end: &PipeEnd) {
    handle.info.span.in_scope(|| match end {
        PipeEnd::Local | PipeEnd::PeerClosed => tracing::debug!(reason = ?end, "pipe closed"),
        PipeEnd::BadFrame(e) => {
            tracing::warn!(error = %e, "closing pipe: peer sent a bad frame")
        }
        PipeEnd::Io(e) => tracing::debug!(error = %e, "pipe failed"),
        PipeEnd::Refused(why) | PipeEnd::TooLarge(why) => {
            tracing::warn!(reason = %why, "closing pipe: peer broke the rules")
        }
    });
    handle.close();
    owner.pipe_closed(handle.id, end);
}

/// A TCP/IPC connection after its handshake: frames in, frames out.
pub(crate) struct StreamPipe {
    pub(crate) owner: Arc<dyn PipeOwner>,
    pub(crate) handle: Arc<PipeHandle>,
    pub(crate) stream: BoxStream,
    pub(crate) inbound: Inbound,
    pub(crate) outbound: Outbound,
    paused: bool,
    /// The core just paused this pipe: give other pipes a turn before delivering again.
    yield_now: bool,
    /// A delivery woke a receiver and the connection had nothing more to read: end the poll
    /// (the read is registered with the runtime) and let the receiver run.
    wait_for_bytes: bool,
    needs_flush: bool,
    turns: Turns,
    /// The yield that `yield_now` asks for gives the one receiver just woken its turn: defer
    /// it as the runtime can.
    yield_to_receiver: bool,
    /// Bytes written since the last take from the queue.
    written_since_take: usize,
    /// A small batch went out and the task is to be woken later: take nothing more in this
    /// poll, so that the sends that follow go out together.
    write_paused: bool,
    /// The connection's reading side for a receiving task that polls before it sleeps
    /// ([`crate::rt::ConnInfo::direct_read`]).
    direct_read: Option<DirectReader>,
    /// This poll reads through `direct_read` (a receiving task's busy poll), not the stream.
    reading_directly: bool,
}

/// How the runtime lets a pipe's task give way to other tasks, where it can do better than
/// the task waking itself.
#[derive(Clone, Copy, Default)]
pub(crate) struct Turns {
    /// The runtime's [`wake_later`](crate::rt::Runtime::wake_later).
    pub(crate) wake_later: Option<fn(&Waker)>,
    /// The runtime's [`defer_yield`](crate::rt::Runtime::defer_yield).
    pub(crate) defer_yield: Option<fn(&mut Context<'_>)>,
}

impl Turns {
    pub(crate) fn of(rt: &impl crate::rt::Runtime) -> Self {
        Self {
            wake_later: rt.wake_later(),
            defer_yield: rt.defer_yield(),
        }
    }
}

/// A batch smaller than this, written by a pipe whose runtime can [wake a task
/// later](crate::rt::Runtime::wake_later), pauses the writer until then.
const SMALL_BATCH: usize = 16 * 1024;

impl StreamPipe {
    pub(crate) fn new(
        owner: Arc<dyn PipeOwner>,
        handle: Arc<PipeHandle>,
        stream: BoxStream,
        kind: FrameKind,
        max_message_size: usize,
        leftover: BytesMut,
        turns: Turns,
    ) -> Self {
        handle.frame_on_enqueue(kind);
        Self {
            owner,
            stream,
            inbound: Inbound::new(kind, max_message_size, leftover, handle.clone()),
            handle,
            outbound: Outbound::new(kind),
            paused: false,
            yield_now: false,
            wait_for_bytes: false,
            needs_flush: false,
            turns,
            yield_to_receiver: false,
            written_since_take: 0,
            write_paused: false,
            direct_read: None,
            reading_directly: false,
        }
    }

    /// Lets a receiving task that polls before it sleeps read the connection through
    /// `reader` (see [`StreamPipe::poll_read_for_receiver`]).
    pub(crate) fn with_direct_reader(mut self, reader: Option<DirectReader>) -> Self {
        // Known to receives from the pipe's attach on, before its task first runs.
        self.handle.runner.set_reads_directly(reader.is_some());
        self.direct_read = reader;
        self
    }

    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> Result<bool, PipeEnd> {
        let mut progress = false;
        loop {
            if self.outbound.is_empty() {
                if self.needs_flush {
                    match Pin::new(&mut self.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.needs_flush = false,
                        Poll::Ready(Err(e)) => return Err(PipeEnd::Io(e)),
                        Poll::Pending => return Ok(progress),
                    }
                }
                if self.write_paused {
                    return Ok(progress);
                }
                let outcome = self.outbound.take(&self.handle, cx.waker());
                self.written_since_take = 0;
                if outcome.was_blocked {
                    self.owner.pipe_writable(self.handle.id);
                }
                if self.outbound.is_empty() {
                    return Ok(progress);
                }
            }
            let stream = &mut self.stream;
            match self
                .outbound
                .write_with(|iov| Pin::new(&mut **stream).poll_write_vectored(cx, iov))
            {
                Poll::Ready(Ok(0)) => return Err(write_zero()),
                Poll::Ready(Ok(n)) => {
                    progress = true;
                    self.needs_flush = true;
                    self.written_since_take += n;
                    self.pause_after_small_batch(cx);
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Err(PipeEnd::Io(e)),
                Poll::Pending => return Ok(progress),
            }
        }
    }

    /// Once a small batch is out, with a runtime that can wake this task later, takes
    /// nothing more until then (see [`Runtime::wake_later`](crate::rt::Runtime::wake_later)).
    fn pause_after_small_batch(&mut self, cx: &mut Context<'_>) {
        if let Some(wake_later) = self.turns.wake_later {
            if self.outbound.is_empty() && self.written_since_take < SMALL_BATCH {
                self.write_paused = true;
                wake_later(cx.waker());
            }
        }
    }

    /// Reads and delivers until the core pauses the pipe, a delivery wakes a receiver, or
    /// nothing more came; with `one_delivery` (a receiving task's poll), stops after the
    /// first delivery of messages, since the receiver that polls is not among those a
    /// delivery wakes and would otherwise not stop a core that drops when full (SUB).
    fn poll_read_side(
        &mut self,
        cx: &mut Context<'_>,
        one_delivery: bool,
    ) -> Result<bool, PipeEnd> {
        let mut progress = false;
        loop {
            if self.paused {
                if !self.handle.poll_resumed(cx.waker()) {
                    return Ok(progress);
                }
                self.paused = false;
            }
            if let Some(delivery) = self.inbound.deliver(&*self.owner, &self.handle)? {
                progress = true;
                if delivery.messages > 0 {
                    self.handle.delivered();
                    if one_delivery {
                        if !delivery.receiving {
                            self.paused = true;
                            self.yield_now = true;
                        }
                        return Ok(progress);
                    }
                }
                if !delivery.receiving {
                    self.paused = true;
                    self.yield_now = true;
                    return Ok(progress);
                }
                if delivery.woke_one_receiver() {
                    self.after_waking_receiver(cx)?;
                    return Ok(progress);
                }
                if delivery.woke_receiver() {
                    self.yield_now = true;
                    return Ok(progress);
                }
                continue;
            }
            // Need more bytes.
            match self.read_once(cx)? {
                Poll::Ready(()) => progress = true,
                Poll::Pending => return Ok(progress),
            }
        }
    }

    /// Reads once from the stream into the inbound buffers. Ready when bytes came (or the read
    /// was interrupted, to be tried again); the end of the stream and errors end the pipe.
    fn read_once(&mut self, cx: &mut Context<'_>) -> Result<Poll<()>, PipeEnd> {
        let stream = &mut self.stream;
        let direct = self.direct_read.as_ref().filter(|_| self.reading_directly);
        let mut asked = 0;
        let read = |buf: &mut [u8]| {
            asked = buf.len();
            match direct {
                // No waker to register: the receiving task that reads so polls again, and
                // the pipe's own task stays registered from its own last read.
                Some(reader) => match reader.try_read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                    done => Poll::Ready(done),
                },
                None => Pin::new(&mut **stream).poll_read(cx, buf),
            }
        };
        match self.inbound.fill(read) {
            Poll::Ready(Ok(0)) => Err(PipeEnd::PeerClosed),
            Poll::Ready(Ok(n)) => {
                self.handle.runner.read_found(n >= SCRATCH_MIN, n == asked);
                Ok(Poll::Ready(()))
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(Poll::Ready(())),
            Poll::Ready(Err(e)) => Err(PipeEnd::Io(e)),
            Poll::Pending => {
                self.handle.runner.set_streaming(false);
                Ok(Poll::Pending)
            }
        }
    }
}

impl StreamPipe {
    /// A delivery of one message woke a receiver: it gets its turn before this pipe delivers
    /// more. If more is buffered, the task yields. If not, it reads once: when bytes came, it
    /// yields with them buffered; when none did, the poll ends there, waiting for bytes.
    ///
    /// Why not yield at once, as after a delivery of several messages: yielding puts this task
    /// behind the receiver, but on tokio the receiver then sat in the run queue, and often the
    /// other worker thread took it, a thread wake-up per message of a request/reply exchange
    /// (tcp 64 B one-way latency 20 µs; 7 µs with the receiver run next on the same thread).
    /// After several messages, the yield stays: the receivers woken then (contexts, say) run
    /// before this task writes, so their replies go out in one write (with a read instead, a
    /// reply each: 68,736 writes against 10,446 for 100,000 round trips of 100 REQ contexts).
    fn after_waking_receiver(&mut self, cx: &mut Context<'_>) -> Result<(), PipeEnd> {
        if self.inbound.has_ready() || self.read_once(cx)?.is_ready() {
            self.yield_now = true;
            self.yield_to_receiver = true;
        } else {
            self.wait_for_bytes = true;
        }
        Ok(())
    }
}

pub(crate) fn write_zero() -> PipeEnd {
    PipeEnd::Io(io::Error::new(
        io::ErrorKind::WriteZero,
        "connection accepted no more bytes",
    ))
}

/// The receiving half of a stream pipe: the frame decoder and its buffers.
pub(crate) struct Inbound {
    decoder: FrameDecoder,
    rbuf: ReadBuffer,
    /// How much the next read asks for: it stands for how fast this peer has been sending.
    read_size: usize,
    /// Messages decoded and not yet taken by the core: the next batch, or what a core that
    /// paused the pipe mid-batch left.
    held: VecDeque<Message>,
    /// A framing error found while decoding a batch, reported once the frames before it are
    /// delivered.
    bad_frame: Option<sp_core::frame::FrameError>,
    /// A large frame being read into a buffer of its own (see [`crate::frame_pool`]). While
    /// there is one, `rbuf` is empty: every byte read belongs to it until it is whole.
    large: Option<LargeFrame>,
    /// The last frame was large, and nothing of the next one is buffered yet: the next read
    /// takes only its prefix (see [`Inbound::fill`]).
    after_large: bool,
    /// Counts `held` as lost if the pipe ends before the core takes it.
    handle: Arc<PipeHandle>,
}

impl Drop for Inbound {
    fn drop(&mut self) {
        if !self.held.is_empty() {
            self.handle.count_lost(self.held.len());
        }
    }
}

thread_local! {
    /// Where quiet pipes read on this thread ([`SCRATCH_MIN`] bytes, zeroed once; see
    /// [`Inbound::fill`]). One per thread rather than one per pipe: a read's bytes are copied
    /// into the pipe's `rbuf` before the read returns, and 4 KiB per pipe was about 40,000 KiB
    /// of a process with 10,000 idle pipes (BENCHMARKS.md, "An idle pipe's own buffers and
    /// task").
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; SCRATCH_MIN].into_boxed_slice());
}

/// Reads at most `max` bytes (at most [`SCRATCH_MIN`]) through `read` into this thread's
/// scratch buffer and appends what came to `rbuf`, so that only the bytes that came are
/// copied and `rbuf` grows by no more.
fn read_via_scratch(
    rbuf: &mut ReadBuffer,
    max: usize,
    read: impl FnOnce(&mut [u8]) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<usize>> {
    let read_into = |scratch: &mut [u8]| {
        let poll = read(&mut scratch[..max]);
        if let Poll::Ready(Ok(n)) = poll {
            rbuf.extend_from_slice(&scratch[..n]);
        }
        poll
    };
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => read_into(&mut scratch),
        // Only if a read polled another pipe's read on this thread: a buffer of its own.
        Err(_) => read_into(&mut vec![0u8; SCRATCH_MIN]),
    })
}

impl Inbound {
    pub(crate) fn new(
        kind: FrameKind,
        max_message_size: usize,
        leftover: BytesMut,
        handle: Arc<PipeHandle>,
    ) -> Self {
        Self {
            decoder: FrameDecoder::new(kind, max_message_size),
            rbuf: ReadBuffer::from(leftover),
            read_size: SCRATCH_MIN,
            // Grown by the first batch: an idle pipe holds no room for one (64 messages,
            // 4.5 KiB, about 40,000 KiB of a process with 10,000 idle pipes).
            held: VecDeque::new(),
            bad_frame: None,
            large: None,
            after_large: false,
            handle,
        }
    }

    /// Feeds the next batch of buffered frames to `owner` while its core keeps receiving from
    /// the pipe. Returns `None` when no whole frame is buffered, otherwise what the delivery
    /// did.
    ///
    /// The batch is decoded before the owner's lock is taken, and is at most
    /// [`DELIVER_BATCH`] messages: the lock is held only while the core takes them, so an
    /// application receiving at the same time waits briefly instead of going to sleep.
    pub(crate) fn deliver(
        &mut self,
        owner: &dyn PipeOwner,
        handle: &PipeHandle,
    ) -> Result<Option<Delivery>, PipeEnd> {
        if self.held.is_empty() && self.bad_frame.is_none() {
            self.decode_batch();
        }
        if self.held.is_empty() {
            return match self.bad_frame.take() {
                Some(e) => Err(PipeEnd::BadFrame(e)),
                None => Ok(None),
            };
        }
        // A core that had paused the pipe takes nothing, or stops mid-batch: what it left
        // stays held for the next delivery rather than being lost.
        let held = &mut self.held;
        Ok(Some(owner.deliver(handle, &mut || held.pop_front())))
    }

    /// Decodes the next batch into `held`: a whole large frame, or up to [`DELIVER_BATCH`]
    /// frames from `rbuf` (a framing error stops it, kept for after them).
    fn decode_batch(&mut self) {
        if let Some(large) = self.large.take_if(|l| l.is_whole()) {
            self.held.push_back(Message::new(large.into_bytes()));
            self.after_large = true;
        }
        let room = DELIVER_BATCH.saturating_sub(self.held.len());
        self.bad_frame = decode_frames(&mut self.decoder, &mut self.rbuf, room, &mut self.held);
    }

    /// Whether a delivery could start now without reading: messages held, a framing error to
    /// report, or a whole frame buffered.
    pub(crate) fn has_ready(&self) -> bool {
        !self.held.is_empty()
            || self.bad_frame.is_some()
            || match &self.large {
                Some(large) => large.is_whole(),
                None => !self.rbuf.is_empty() && self.decoder.bytes_wanted(self.rbuf.data()) == 0,
            }
    }

    /// Moves the frame begun in `rbuf` into a buffer of its own when it is large (at least
    /// [`POOLED_MIN`](crate::frame_pool::POOLED_MIN)): a kept one from the pool if one fits,
    /// else a new one that grows with the bytes that arrive, as `rbuf` would.
    fn begin_large(&mut self) -> Option<LargeFrame> {
        // A refused prefix stays in `rbuf`, where the next decode reports it.
        let len = self.decoder.payload_len(self.rbuf.data()).ok()??;
        let prefix = self.decoder.kind().prefix_len();
        if len < crate::frame_pool::POOLED_MIN || self.rbuf.len() >= prefix + len {
            return None;
        }
        let have = &self.rbuf.data()[prefix..];
        let buf = crate::frame_pool::take(len)
            .unwrap_or_else(|| Vec::with_capacity(len.min((2 * have.len()).max(self.read_size))));
        let large = LargeFrame::new(buf, have, len);
        self.rbuf.clear();
        Some(large)
    }

    /// Doubles the read size (up to [`READ_CHUNK`]) after a read that filled all the room it
    /// had: the peer sends faster than this pipe reads.
    fn grow_read_size(&mut self) {
        self.read_size = (self.read_size * 2).min(READ_CHUNK);
    }

    /// Reads once through `read`. Memory follows the bytes the peer sent, never the length it
    /// claims: a frame larger than the read size is read straight into its own buffer, which
    /// grows by at most what it already holds or the read size, whichever is larger (doubling,
    /// so large messages are not copied quadratically). Smaller ones are read into `rbuf`: by
    /// a quiet pipe through the scratch buffer, so that only the bytes that came are copied;
    /// by a busy one (its reads fill more than the scratch buffer) directly, `rbuf` growing
    /// by the read size, which grows only while the peer keeps filling it. So a pipe holds at
    /// most about twice what its peer sent, plus one read.
    ///
    /// Why a busy pipe skips the scratch buffer: a 32 KiB scratch buffer beside the read
    /// buffer was 32 KiB of every busy receiver's memory, and copying each read out of it cost
    /// about what zeroing the room in `rbuf` costs.
    pub(crate) fn fill(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.large.is_none() {
            self.large = self.begin_large();
        }
        if let Some(large) = &mut self.large {
            // A whole frame is delivered before the next read (`deliver` comes first).
            debug_assert!(!large.is_whole(), "a whole large frame is read no further");
            let (poll, filled_read) = large.fill(read, self.read_size);
            if filled_read && large.len <= LARGE_FRAME {
                self.grow_read_size();
            }
            return poll;
        }
        let wanted = self.decoder.bytes_wanted(self.rbuf.data());
        let buffered = self.rbuf.len();
        if std::mem::take(&mut self.after_large) && buffered == 0 {
            // After a large frame, the next one is likely large too: read its prefix alone,
            // so that its payload is read straight into a buffer of its own, rather than read
            // here and copied there.
            let prefix = self.decoder.kind().prefix_len();
            let poll = read_via_scratch(&mut self.rbuf, prefix, read);
            if poll.is_pending() {
                // Nothing came: the next read tries again.
                self.after_large = true;
            }
            return poll;
        }
        if wanted <= SCRATCH_MIN && self.read_size <= SCRATCH_MIN {
            let poll = read_via_scratch(&mut self.rbuf, SCRATCH_MIN, read);
            if let Poll::Ready(Ok(SCRATCH_MIN)) = poll {
                self.grow_read_size();
            }
            return poll;
        }
        let grow = if wanted > self.read_size {
            wanted.min(READ_MAX).min(buffered.max(self.read_size))
        } else {
            self.read_size
        };
        let room = self.rbuf.room(grow);
        let asked = room.len();
        let poll = read(room);
        let got = match &poll {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        self.rbuf.commit(got);
        // A peer that fills ordinary frames fast earns larger reads; one that claims a huge
        // frame does not (its frame's buffer already grows with its bytes).
        if got == asked && wanted <= LARGE_FRAME {
            self.grow_read_size();
        } else if matches!(poll, Poll::Ready(Ok(n)) if n < SCRATCH_MIN) {
            // The peer slowed down: its reads ask for less room again.
            self.read_size = (self.read_size / 2).max(SCRATCH_MIN);
        }
        poll
    }
}

/// Decodes up to `max` whole frames from the front of `rbuf` into `held`; returns the framing
/// error that stopped it, if any. Payloads of at most [`OWN_BUFFER_MAX`] bytes are copied
/// from the read buffer into one buffer of their own, the size of those frames (the whole
/// span at once when every frame of the batch is small); larger ones share the read buffer.
///
/// Why copied: a queued message that shares the read buffer keeps all of it alive, and the
/// pipe then reads into a new one. A receiver a queue of 64 B messages behind its sender held
/// a few whole read buffers this way, each allocated by whichever runtime thread ran the pipe
/// task, so in one malloc arena per thread (its anonymous memory grew by 346 KiB in a tcp 64 B
/// run, against 184 KiB with small frames copied). Copied, the read buffer is free once
/// decoded and takes the next read, and the messages pin only their own bytes. One buffer per
/// batch, not one per message: a buffer per message cost 8 % of tcp 64 B throughput
/// (BENCHMARKS.md, "Memory"). Copied straight from the read buffer rather than split off it
/// first: each split and its drop were a reference-count update of the read buffer, two
/// atomic operations per message (15 % of a tcp 64 B receiver's samples). The frames'
/// lengths are parsed once, and `rbuf` is advanced once per batch: a tcp 64 B receiver ran
/// 1,049 instructions per message before, 872 after (callgrind, without zeroing the reads'
/// room; BENCHMARKS.md, "A batch of small frames is decoded with one copy").
fn decode_frames(
    decoder: &mut FrameDecoder,
    rbuf: &mut ReadBuffer,
    max: usize,
    held: &mut VecDeque<Message>,
) -> Option<sp_core::frame::FrameError> {
    let prefix = decoder.kind().prefix_len();
    // First the whole frames buffered, their lengths, and the bytes of the small ones, so
    // that their buffer is allocated once, at its size.
    let mut lens = [0usize; DELIVER_BATCH];
    let max = max.min(DELIVER_BATCH);
    let (mut frames, mut at, mut small) = (0, 0, 0);
    let mut refused = None;
    let data = rbuf.data();
    while frames < max {
        match decoder.payload_len(&data[at..]) {
            Ok(Some(len)) if data.len() - at - prefix >= len => {
                if len <= OWN_BUFFER_MAX {
                    small += len;
                }
                lens[frames] = len;
                at += prefix + len;
                frames += 1;
            }
            // An incomplete frame waits for more bytes.
            Ok(_) => break,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    if small + frames * prefix == at {
        // Every frame small: one copy of their span, prefixes and all, that the messages
        // then share (8 or 9 bytes more per message than their bodies, one `memcpy` instead
        // of one per message).
        let span = Bytes::copy_from_slice(&data[..at]);
        rbuf.advance(at);
        let mut pos = 0;
        for &len in &lens[..frames] {
            let start = pos + prefix;
            pos = start + len;
            held.push_back(Message::new(span.slice(start..pos)));
        }
    } else {
        take_frames(rbuf, prefix, &lens[..frames], small, held);
    }
    refused
}

/// The messages of whole frames of `lens` payload bytes at the front of `rbuf`, some of them
/// large: the small ones (`small` bytes in all) copied into one buffer, the large ones split
/// off `rbuf`. `rbuf` is walked by offset, advanced only before a large payload and at the
/// end, not twice per frame.
fn take_frames(
    rbuf: &mut ReadBuffer,
    prefix: usize,
    lens: &[usize],
    small: usize,
    held: &mut VecDeque<Message>,
) {
    let mut own = BytesMut::with_capacity(small);
    let mut pos = 0;
    for &len in lens {
        let start = pos + prefix;
        let body = if len <= OWN_BUFFER_MAX {
            own.extend_from_slice(&rbuf.data()[start..start + len]);
            pos = start + len;
            own.split().freeze()
        } else {
            rbuf.advance(start);
            pos = 0;
            rbuf.split_to(len).freeze()
        };
        held.push_back(Message::new(body));
    }
    rbuf.advance(pos);
}

/// A large frame's payload, read straight into a buffer of its own that the message then
/// owns (see [`crate::frame_pool`]).
struct LargeFrame {
    /// The payload bytes so far, then bytes of no meaning: a kept buffer from the pool comes
    /// with its earlier contents, which reads overwrite instead of zeroing them first.
    buf: Vec<u8>,
    /// How many bytes of `buf` are this payload's.
    filled: usize,
    /// The payload's length, from the frame's prefix.
    len: usize,
}

impl LargeFrame {
    /// Starts a frame of `len` payload bytes in `buf` (from the pool, or new) with `have`, the
    /// bytes of it already read.
    fn new(mut buf: Vec<u8>, have: &[u8], len: usize) -> Self {
        if buf.len() < have.len() {
            buf.resize(have.len(), 0);
        }
        buf[..have.len()].copy_from_slice(have);
        Self {
            buf,
            filled: have.len(),
            len,
        }
    }

    fn is_whole(&self) -> bool {
        self.filled == self.len
    }

    /// The whole payload, as the message's bytes.
    fn into_bytes(mut self) -> Bytes {
        debug_assert!(self.is_whole());
        self.buf.truncate(self.len);
        crate::frame_pool::into_bytes(self.buf)
    }

    /// Reads once through `read`, never past the frame's end. Memory follows the bytes the
    /// peer sent: a buffer that must grow grows by at most what it holds or the pipe's read
    /// size, whichever is larger. Also returns whether the read filled all the room
    /// it was given.
    fn fill(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<io::Result<usize>>,
        read_size: usize,
    ) -> (Poll<io::Result<usize>>, bool) {
        let filled = self.filled;
        let grow = (self.len - filled).min(READ_MAX).min(filled.max(read_size));
        let target = filled + grow;
        if target > self.buf.capacity() {
            // Doubling keeps large frames from being copied quadratically. Only this
            // payload's bytes are worth keeping.
            self.buf.truncate(filled);
            let cap = target.max(self.buf.capacity() * 2).min(self.len);
            self.buf.reserve_exact(cap - filled);
        }
        if self.buf.len() < target {
            self.buf.resize(target, 0);
        }
        let poll = read(&mut self.buf[filled..target]);
        let got = match &poll {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        self.filled += got;
        (poll, got == grow)
    }
}

/// The sending half of a stream pipe: messages taken from the queue, encoded into chunks that
/// go out with vectored writes. Shared by the async and the thread-based runner.
pub(crate) struct Outbound {
    kind: FrameKind,
    /// Frames the senders encoded as they queued them; written before `chunks`. Its buffer
    /// goes back to the queue for the next ones once written.
    framed: BytesMut,
    taken: VecDeque<Message>,
    chunks: VecDeque<Bytes>,
    coalesce: BytesMut,
}

/// Makes the room of an emptied buffer that writes advanced through usable from its start.
///
/// Why: the senders append the next batch to this buffer (it goes back to the pipe's queue).
/// Left as it is, the batch goes after the written part, and when it outgrows the room there
/// `BytesMut` moves it to the front only if the written part is at least as long as the batch
/// so far; otherwise it allocates a buffer twice as large with the written part kept in front.
/// A tcp 64 B sender's two framed buffers grew from the 19 KiB that its queue holds to 64 KiB
/// each, and the run added 128 KiB to the sender's resident memory, against 44 KiB for NNG's
/// (BENCHMARKS.md, "Memory: the sender's framed buffers").
fn reclaim_written(buf: &mut BytesMut) {
    debug_assert!(buf.is_empty());
    // Asks for one byte more than what is left after the written part: met by the written
    // part's room alone, never by allocating.
    let _ = buf.try_reclaim(buf.capacity() + 1);
}

/// A written-out framed buffer larger than this is freed rather than kept for the next batch,
/// so that one burst does not pin its memory for the pipe's lifetime.
const FRAMED_KEEP: usize = 64 * 1024;

impl Outbound {
    pub(crate) fn new(kind: FrameKind) -> Self {
        Self {
            kind,
            framed: BytesMut::new(),
            taken: VecDeque::new(),
            chunks: VecDeque::new(),
            coalesce: BytesMut::new(),
        }
    }

    /// Returns true when every encoded byte has been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.framed.is_empty() && self.chunks.is_empty()
    }

    /// Takes what `handle` has queued (registering `waker` if nothing) and encodes what its
    /// senders did not. Only called once everything taken before is written.
    pub(crate) fn take(&mut self, handle: &PipeHandle, waker: &Waker) -> TakeOutcome {
        debug_assert!(self.is_empty(), "the previous batch is written first");
        if self.framed.capacity() > FRAMED_KEEP {
            self.framed = BytesMut::new();
        } else {
            reclaim_written(&mut self.framed);
        }
        let outcome = handle.take_framed(&mut self.framed, &mut self.taken, waker, false);
        if !self.taken.is_empty() {
            self.encode_taken();
        }
        outcome
    }

    /// Encodes taken messages into write chunks: small ones coalesced, large bodies by reference.
    fn encode_taken(&mut self) {
        for msg in self.taken.drain(..) {
            if msg.len() <= COALESCE_MAX {
                encode(self.kind, &msg, &mut self.coalesce);
            } else {
                if !self.coalesce.is_empty() {
                    self.chunks.push_back(self.coalesce.split().freeze());
                }
                let prefix = encode_prefix(self.kind, msg.len());
                self.chunks
                    .push_back(Bytes::copy_from_slice(prefix.as_bytes()));
                if !msg.header.is_empty() {
                    self.chunks.push_back(msg.header);
                }
                if !msg.body.is_empty() {
                    self.chunks.push_back(msg.body);
                }
            }
        }
        if !self.coalesce.is_empty() {
            self.chunks.push_back(self.coalesce.split().freeze());
        }
    }

    /// Offers up to `MAX_IOVECS` chunks to `write` and drops the bytes it reports written.
    pub(crate) fn write_with(
        &mut self,
        write: impl FnOnce(&[IoSlice<'_>]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
        let mut n_iov = 0;
        let framed = (!self.framed.is_empty()).then_some(&self.framed[..]);
        for chunk in framed.into_iter().chain(self.chunks.iter().map(|c| &c[..])) {
            if n_iov == MAX_IOVECS {
                break;
            }
            iov[n_iov] = IoSlice::new(chunk);
            n_iov += 1;
        }
        let poll = write(&iov[..n_iov]);
        if let Poll::Ready(Ok(written)) = poll {
            let from_framed = written.min(self.framed.len());
            self.framed.advance(from_framed);
            let mut n = written - from_framed;
            while n > 0 {
                // The stream wrote n bytes of what we offered, which all lie in `chunks`.
                let front = self.chunks.front_mut().expect("written bytes were queued");
                if n >= front.len() {
                    n -= front.len();
                    self.chunks.pop_front();
                } else {
                    front.advance(n);
                    n = 0;
                }
            }
        }
        poll
    }
}

impl Future for StreamPipe {
    type Output = PipeEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PipeEnd> {
        let this = self.get_mut();
        // Woken, whether later as asked or earlier by something else: take what is queued.
        this.write_paused = false;
        for _ in 0..POLL_BUDGET {
            if this.handle.poll_closed(cx.waker()) {
                return Poll::Ready(PipeEnd::Local);
            }
            let wrote = match this.poll_write_side(cx) {
                Ok(p) => p,
                Err(end) => return Poll::Ready(end),
            };
            if this.handle.is_draining() {
                // Closing: nothing more is delivered; finish once every queued byte is out.
                if this.outbound.is_empty()
                    && !this.needs_flush
                    && this.handle.poll_drained(cx.waker())
                {
                    return Poll::Ready(PipeEnd::Local);
                }
                if !wrote {
                    return Poll::Pending;
                }
                continue;
            }
            let read = match this.poll_read_side(cx, false) {
                Ok(p) => p,
                Err(end) => return Poll::Ready(end),
            };
            if std::mem::take(&mut this.yield_now) {
                let deferred = std::mem::take(&mut this.yield_to_receiver)
                    .then_some(this.turns.defer_yield)
                    .flatten();
                return yield_after_pause(&this.handle, cx, deferred);
            }
            if std::mem::take(&mut this.wait_for_bytes) {
                return Poll::Pending;
            }
            if !wrote && !read {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl StreamPipe {
    /// A receiving task's poll (see `crate::pipe_runner`): the reading side only. The pipe's
    /// own task, which every wake-up of the pipe wakes too, writes what is queued: written
    /// here, a task that sends and receives would write each message as it goes (100 REQ
    /// contexts: a `writev` per request instead of one per batch).
    pub(crate) fn poll_read_for_receiver(
        &mut self,
        cx: &mut Context<'_>,
        directly: bool,
    ) -> Poll<PipeEnd> {
        if self.handle.is_closed() || self.handle.is_draining() {
            return Poll::Pending;
        }
        self.reading_directly = directly && self.direct_read.is_some();
        let read = self.poll_read_side(cx, true);
        self.reading_directly = false;
        if let Err(end) = read {
            return Poll::Ready(end);
        }
        self.wait_for_bytes = false;
        self.yield_to_receiver = false;
        if std::mem::take(&mut self.yield_now) {
            // Registers for the resume as the task's own poll would.
            return yield_after_pause(&self.handle, cx, None);
        }
        Poll::Pending
    }
}

/// Ends a poll after the core paused `handle`'s pipe, or after a delivery woke a receiver
/// (stream pipes; an inproc pipe delivers on). If the pipe receives (it was never paused, or was resumed meanwhile: the application drained
/// the queue from another thread), the task re-queues itself behind the other tasks instead of
/// delivering again at once: that turn-taking is what makes PULL's fair queueing fair on a
/// single-threaded executor, and what gives a woken receiver its turn. Otherwise the resume
/// wakes it.
pub(crate) fn yield_after_pause<T>(
    handle: &PipeHandle,
    cx: &mut Context<'_>,
    deferred: Option<fn(&mut Context<'_>)>,
) -> Poll<T> {
    if handle.poll_resumed(cx.waker()) {
        match deferred {
            Some(defer) => defer(cx),
            None => cx.waker().wake_by_ref(),
        }
    }
    Poll::Pending
}

/// One side of an in-process link: takes messages from the peer's queue and feeds its own core.
pub(crate) struct InprocPipe {
    owner: Arc<dyn PipeOwner>,
    pub(crate) handle: Arc<PipeHandle>,
    peer_owner: Arc<dyn PipeOwner>,
    peer: Arc<PipeHandle>,
    inbox: VecDeque<Message>,
    /// The peer's messages of the last take from its queue, on their way to `inbox`.
    taken: VecDeque<Message>,
    /// A take of the current poll registered this task for the peer's next message (takes
    /// register even when they find messages, on a pipe that yields after waking): the
    /// registration holds until that message, whose enqueue then wakes the task.
    watching: bool,
    /// End the poll after a delivery that woke a receiver (the owner's receivers run on
    /// threads of their own); otherwise deliver on.
    yield_after_waking: bool,
}

/// Runs one side of an inproc link until either side closes.
pub(crate) async fn run_inproc_pipe(mut pipe: InprocPipe) {
    let end = std::future::poll_fn(|cx| pipe.poll_run(cx)).await;
    // Messages the peer queued for us that our core never took are lost with the pipe.
    pipe.handle.count_lost(pipe.inbox.len());
    end_pipe(&*pipe.owner, &pipe.handle, &end);
}

impl InprocPipe {
    /// One side of a link: takes what `peer`'s senders queue and delivers it to `owner`'s
    /// core through `handle`.
    pub(crate) fn new(
        owner: Arc<dyn PipeOwner>,
        handle: Arc<PipeHandle>,
        peer_owner: Arc<dyn PipeOwner>,
        peer: Arc<PipeHandle>,
    ) -> Self {
        Self {
            yield_after_waking: owner.receivers_have_own_threads(),
            owner,
            handle,
            peer_owner,
            peer,
            inbox: VecDeque::new(),
            taken: VecDeque::new(),
            watching: false,
        }
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<PipeEnd> {
        self.watching = false;
        for _ in 0..POLL_BUDGET {
            if self.handle.poll_closed(cx.waker()) {
                return Poll::Ready(PipeEnd::Local);
            }
            if self.handle.is_draining() {
                // Our peer's task takes what we queued; end once it has taken everything.
                return if self.handle.poll_drained(cx.waker()) {
                    Poll::Ready(PipeEnd::Local)
                } else {
                    Poll::Pending
                };
            }
            // The peer's close wakes its queue's consumer (this task), registered by every
            // take that finds the queue empty and before every pause: so the flag alone is
            // read here, not the queue's lock, which the peer's sender takes for each message.
            if self.peer.is_closed() {
                // Deliver whatever the peer queued before it went away, then end.
                let _ = self.take_into_inbox(cx.waker());
                if self.inbox.is_empty() {
                    return Poll::Ready(PipeEnd::PeerClosed);
                }
            }
            if !self.handle.poll_resumed(cx.waker()) {
                return self.wait_paused(cx);
            }
            if self.inbox.is_empty() && !self.take_from_peer(cx.waker()) {
                // A close between the flag's read and the take's registration found no
                // consumer to wake: read the flag again (the take's lock orders the two).
                if self.peer.is_closed() {
                    continue;
                }
                return Poll::Pending;
            }
            let inbox = &mut self.inbox;
            // inproc hands message objects over, header and body as the sending core made
            // them: the receiving core parses header-then-body as if it came off a wire
            // (`Input::Received`), joining the two only where it must.
            let delivery = self
                .owner
                .deliver(&self.handle, &mut || inbox.pop_front().map(handed_over));
            if delivery.receiving && delivery.woke_one_receiver() && self.inbox.is_empty() {
                // The receiver's turn: with nothing more queued, wait for the peer's next
                // message (registered by the take) rather than yield, which would run this
                // task once more for nothing, often on another thread. A pipe whose receivers
                // have threads of their own may have registered already, with a take of this
                // poll (a second take would find what came since, to deliver after a yield:
                // the next enqueue's wake-up does the same, with one lock of the peer's queue
                // fewer per message).
                if self.watching {
                    // A close before that take's registration woke nobody: see the take below.
                    if self.peer.is_closed() {
                        continue;
                    }
                    return Poll::Pending;
                }
                if !self.take_from_peer(cx.waker()) {
                    if self.peer.is_closed() {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
            // Unlike a stream pipe, a delivery that woke one receiver on the same executor does
            // not end the poll: the pipe delivers what it took and takes again, until the
            // peer's queue is empty, the core pauses it or the budget ends. With a yield after
            // each such delivery, a sender on another tokio worker and this task took turns at
            // the peer's queue lock three messages at a time (4,000,000 messages: 1,200,000
            // takes); the receiver runs after this poll either way, with more to take at once,
            // and the core's receive queue bounds how far ahead the pipe gets. Several woken
            // receivers (contexts) do get their turn first, so that their replies go out
            // together (100 REQ/REP contexts over inproc: a quarter fewer round trips without
            // it); so does a receiver on a thread of its own (see
            // `Runtime::receivers_have_own_threads`).
            if !delivery.receiving && !self.handle.poll_resumed(cx.waker()) {
                return self.wait_paused(cx);
            }
            let yield_after_wake = self.yield_after_waking || delivery.woke_several();
            if !delivery.receiving || (delivery.woke_receiver() && yield_after_wake) {
                return yield_after_pause(&self.handle, cx, None);
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Ends a poll while the core has paused this pipe (`poll_resumed` registered the task
    /// for the resume). The peer's close must wake it too, so it registers as the peer's
    /// consumer; a pipe whose closed peer left nothing more to deliver ends now rather than
    /// at the resume.
    fn wait_paused(&mut self, cx: &mut Context<'_>) -> Poll<PipeEnd> {
        if self.peer.poll_closed_as_consumer(cx.waker()) && self.inbox.is_empty() {
            let _ = self.take_into_inbox(cx.waker());
            if self.inbox.is_empty() {
                return Poll::Ready(PipeEnd::PeerClosed);
            }
        }
        Poll::Pending
    }

    /// Takes what the peer queued into the inbox (registering `waker` for its next message
    /// if there is none), tells the peer's socket its pipe has room again if it was full, and
    /// returns whether the inbox now holds anything.
    fn take_from_peer(&mut self, waker: &Waker) -> bool {
        let outcome = self.take_into_inbox(waker);
        if outcome.was_blocked {
            self.peer_owner.pipe_writable(self.peer.id);
        }
        !self.inbox.is_empty()
    }

    /// Takes what the peer queued (registering `waker` if nothing) behind what the inbox
    /// still holds. A take swaps queues, so it goes through an empty one: a take straight
    /// into an inbox that a pause left messages in (a closed peer's last messages are taken
    /// whenever the pipe runs) gave those messages to the peer's queue instead.
    fn take_into_inbox(&mut self, waker: &Waker) -> TakeOutcome {
        debug_assert!(self.taken.is_empty());
        let watch = self.yield_after_waking;
        let outcome = self.peer.take_unframed(&mut self.taken, waker, watch);
        self.watching |= watch;
        if self.inbox.is_empty() {
            // The usual case: the taken queue becomes the inbox, and the empty inbox's
            // buffer serves the next take. An append moved every message (72 instructions
            // per 64 B message on a busy link, callgrind).
            std::mem::swap(&mut self.inbox, &mut self.taken);
        } else {
            self.inbox.append(&mut self.taken);
        }
        outcome
    }
}

impl PipeHandle {
    /// Like `poll_closed`, but registers as the queue's consumer (the peer side of inproc).
    fn poll_closed_as_consumer(&self, waker: &Waker) -> bool {
        let mut q = lock(&self.q);
        let closed = self.is_closed();
        if !closed {
            set_waker(&mut q.consumer, waker);
        }
        closed
    }
}

/// A message as an inproc pipe delivers it: the sender's pipe choice is not the receiver's.
fn handed_over(msg: Message) -> Message {
    msg.with_pipe(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe_view::Transport;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_written_out_buffer_is_refilled_from_its_start_without_growing() {
        let mut buf = BytesMut::with_capacity(1024);
        buf.extend_from_slice(&[1; 600]);
        // Written out: the writes advanced through it.
        buf.advance(600);
        assert_eq!(buf.capacity(), 424, "only the room after the written part");
        reclaim_written(&mut buf);
        assert_eq!(buf.capacity(), 1024, "the whole room, from the start");
        // The next batch fills it without a new allocation (which would have doubled it
        // and kept the written part in front).
        let start = buf.as_ptr();
        buf.extend_from_slice(&[2; 1024]);
        assert_eq!(buf.as_ptr(), start);
        assert_eq!(buf.capacity(), 1024);
    }

    #[test]
    fn a_senders_framed_buffers_stay_the_size_of_their_largest_batch() {
        let h = handle();
        h.frame_on_enqueue(FrameKind::Tcp);
        let mut out = Outbound::new(FrameKind::Tcp);
        let msg = Message::new(vec![7u8; 64]);
        let (small, large) = (200, 400);
        let mut largest = 0;
        for round in 0..64 {
            // The two buffers take turns, and each gets a small batch (under half its room),
            // then a large one, which does not fit behind the written part of the small one.
            // Each batch is written in two parts (a socket buffer that takes a third first).
            let batch = if round % 4 < 2 { small } else { large };
            for _ in 0..batch {
                h.enqueue(msg.clone(), usize::MAX);
            }
            out.take(&h, Waker::noop());
            let total = out.framed.len();
            for n in [total / 3, total - total / 3] {
                let written = out.write_with(|_| Poll::Ready(Ok(n)));
                assert!(matches!(written, Poll::Ready(Ok(_))));
            }
            assert!(out.is_empty());
            // Written through: its allocation is the room left plus what was written.
            largest = largest.max(out.framed.capacity() + total);
        }
        let batch_bytes = large * (8 + 64);
        assert!(
            largest <= 2 * batch_bytes,
            "{largest} bytes for batches of {batch_bytes}"
        );
    }

    fn handle() -> Arc<PipeHandle> {
        let info = PipeInfo {
            transport: Transport::Tcp,
            endpoint: None,
            dialed: false,
            conn: crate::rt::ConnInfo::default(),
            peer_protocol: ProtocolId::PAIR1,
            tls_peer_certificate: None,
            ws_path: None,
            span: tracing::Span::none(),
        };
        PipeHandle::new(PipeId::new(1).unwrap(), info)
    }

    fn wire(msg: &Message) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(FrameKind::Tcp, msg, &mut out);
        out.to_vec()
    }

    /// Small, large (not framed by the sender), then small again: the last one queues behind
    /// the large one unframed, so order holds.
    fn queue_mixed(h: &PipeHandle) -> Vec<Message> {
        let msgs = vec![
            Message::with_header(&b"\x00\x00\x00\x01"[..], &b"one"[..]),
            Message::new(&b"two"[..]),
            Message::new(vec![7u8; COALESCE_MAX + 1]),
            Message::new(&b"four"[..]),
        ];
        for m in &msgs {
            assert!(h.enqueue(m.clone(), 100));
        }
        msgs
    }

    #[test]
    fn framed_and_unframed_messages_are_written_in_queue_order() {
        let h = handle();
        h.frame_on_enqueue(FrameKind::Tcp);
        let msgs = queue_mixed(&h);
        assert_eq!(h.queued(), 4);
        let mut out = Outbound::new(FrameKind::Tcp);
        out.take(&h, Waker::noop());
        assert_eq!(h.queued(), 0);
        let mut written = Vec::new();
        while !out.is_empty() {
            // A stream that takes 5 bytes at a time: partial writes cross every boundary.
            let _ = out.write_with(|iov| {
                let mut n = 0;
                for s in iov {
                    let take = (5 - n).min(s.len());
                    written.extend_from_slice(&s[..take]);
                    n += take;
                }
                Poll::Ready(Ok(n))
            });
        }
        let expected: Vec<u8> = msgs.iter().flat_map(wire).collect();
        assert_eq!(written, expected);
    }

    #[test]
    fn small_frames_leave_the_read_buffer_and_large_ones_share_it() {
        let bodies = [
            vec![1u8; 10],
            vec![2u8; OWN_BUFFER_MAX + 1],
            vec![3u8; OWN_BUFFER_MAX],
        ];
        let mut rbuf = BytesMut::new();
        for body in &bodies {
            rbuf.extend_from_slice(&wire(&Message::new(body.clone())));
        }
        // A refused prefix after them: the frames before it are delivered, then the error.
        rbuf.extend_from_slice(&u64::MAX.to_be_bytes());
        let read_buf = rbuf.as_ptr_range();
        let mut rbuf = ReadBuffer::from(rbuf);
        let within = |b: &Bytes| read_buf.contains(&b.as_ptr());
        let mut decoder = FrameDecoder::new(FrameKind::Tcp, 0);
        let mut held = VecDeque::new();
        let error = decode_frames(&mut decoder, &mut rbuf, 64, &mut held);
        assert!(error.is_some(), "the refused prefix is reported");
        let got: Vec<&Bytes> = held.iter().map(|m| &m.body).collect();
        assert_eq!(got.len(), 3);
        for (got, sent) in got.iter().zip(&bodies) {
            assert_eq!(&got[..], &sent[..]);
        }
        assert!(
            !within(got[0]) && !within(got[2]),
            "small payloads are copied"
        );
        assert!(
            within(got[1]),
            "a large payload keeps sharing the read buffer"
        );
        assert_eq!(
            got[2].as_ptr(),
            got[0].as_ptr().wrapping_add(10),
            "the small ones share one buffer"
        );
        // At most `max` frames a batch; the rest stays buffered.
        let mut rbuf = BytesMut::new();
        for body in &bodies {
            rbuf.extend_from_slice(&wire(&Message::new(body.clone())));
        }
        let mut rbuf = ReadBuffer::from(rbuf);
        let mut held = VecDeque::new();
        assert!(decode_frames(&mut decoder, &mut rbuf, 2, &mut held).is_none());
        assert_eq!(held.len(), 2);
        assert_eq!(rbuf.len(), 8 + OWN_BUFFER_MAX);
    }

    #[test]
    fn a_batch_of_small_frames_shares_one_copy_and_leaves_an_incomplete_frame_buffered() {
        for kind in [FrameKind::Tcp, FrameKind::Ipc] {
            let bodies = [vec![7u8; 64], Vec::new(), vec![8u8; OWN_BUFFER_MAX]];
            let mut rbuf = BytesMut::new();
            for body in &bodies {
                let prefix = sp_core::frame::encode_prefix(kind, body.len());
                rbuf.extend_from_slice(prefix.as_bytes());
                rbuf.extend_from_slice(body);
            }
            // The next frame's prefix and part of its body.
            let rest = sp_core::frame::encode_prefix(kind, 100);
            rbuf.extend_from_slice(rest.as_bytes());
            rbuf.extend_from_slice(&[9u8; 40]);
            let read_buf = rbuf.as_ptr_range();
            let mut rbuf = ReadBuffer::from(rbuf);
            let mut decoder = FrameDecoder::new(kind, 0);
            let mut held = VecDeque::new();
            assert!(decode_frames(&mut decoder, &mut rbuf, 64, &mut held).is_none());
            let got: Vec<&Bytes> = held.iter().map(|m| &m.body).collect();
            assert_eq!(got.len(), 3, "{kind:?}");
            for (got, sent) in got.iter().zip(&bodies) {
                assert_eq!(&got[..], &sent[..], "{kind:?}");
            }
            assert!(
                !read_buf.contains(&got[0].as_ptr()) && !read_buf.contains(&got[2].as_ptr()),
                "small payloads are copied ({kind:?})"
            );
            assert_eq!(
                rbuf.len(),
                kind.prefix_len() + 40,
                "the incomplete frame stays ({kind:?})"
            );
        }
    }

    fn inbound() -> Inbound {
        Inbound::new(FrameKind::Tcp, 0, BytesMut::new(), handle())
    }

    /// Feeds `inbound` one read from `stream`, as a connection would: at most what the read
    /// asks for.
    fn read_from(inbound: &mut Inbound, stream: &mut &[u8]) -> usize {
        let mut asked = 0;
        let poll = inbound.fill(|buf| {
            asked = buf.len();
            let n = buf.len().min(stream.len());
            buf[..n].copy_from_slice(&stream[..n]);
            *stream = &stream[n..];
            Poll::Ready(Ok(n))
        });
        assert!(matches!(poll, Poll::Ready(Ok(_))));
        asked
    }

    #[test]
    fn an_idle_pipe_holds_no_buffer_of_its_own_and_a_quiet_one_keeps_only_what_came() {
        let mut inbound = inbound();
        assert_eq!(
            inbound.held.capacity(),
            0,
            "no room for a batch before one came"
        );
        assert_eq!(inbound.rbuf.capacity(), 0);
        // A quiet pipe reads through its thread's scratch buffer; a read that polls another
        // pipe's read meanwhile gets a buffer of its own.
        let mut other = self::inbound();
        let poll = inbound.fill(|buf| {
            assert_eq!(buf.len(), SCRATCH_MIN);
            let nested = other.fill(|buf| {
                buf[..5].copy_from_slice(b"inner");
                Poll::Ready(Ok(5))
            });
            assert!(matches!(nested, Poll::Ready(Ok(5))));
            buf[..5].copy_from_slice(b"outer");
            Poll::Ready(Ok(5))
        });
        assert!(matches!(poll, Poll::Ready(Ok(5))));
        assert_eq!(inbound.rbuf.data(), b"outer");
        assert_eq!(other.rbuf.data(), b"inner");
        assert!(
            inbound.rbuf.capacity() < SCRATCH_MIN,
            "only the bytes that came"
        );
        // Nothing came: nothing is added.
        assert!(inbound.fill(|_| Poll::Pending).is_pending());
        assert_eq!(inbound.rbuf.data(), b"outer");
    }

    #[test]
    fn a_busy_pipe_reads_larger_chunks_straight_into_its_read_buffer_and_a_slow_one_shrinks_back() {
        let msgs: Vec<Message> = (0..2000u32)
            .map(|i| Message::new(i.to_be_bytes().repeat(16)))
            .collect();
        let bytes: Vec<u8> = msgs.iter().flat_map(wire).collect();
        let mut stream = &bytes[..];
        let mut inbound = inbound();
        let mut asked = Vec::new();
        while stream.len() >= READ_CHUNK {
            asked.push(read_from(&mut inbound, &mut stream));
        }
        // Each read that filled what it asked for doubles the next, up to READ_CHUNK.
        assert_eq!(asked[..4], [SCRATCH_MIN, 8192, 16384, READ_CHUNK]);
        assert!(asked[4..].iter().all(|&n| n == READ_CHUNK));
        // A read that brings little halves the next one.
        let mut short = &stream[..100];
        read_from(&mut inbound, &mut short);
        assert_eq!(inbound.read_size, READ_CHUNK / 2);
        // What was read decodes to the messages sent, in order.
        let mut decoded = Vec::new();
        let mut read_bytes = BytesMut::from(inbound.rbuf.data());
        while let Ok(Some(frame)) = inbound.decoder.decode(&mut read_bytes) {
            decoded.push(frame);
        }
        let read = bytes.len() - stream.len() + 100;
        assert_eq!(decoded.len(), read / 72, "every whole frame read");
        for (got, sent) in decoded.iter().zip(&msgs) {
            assert_eq!(got, &sent.body);
        }
    }

    /// Large frames one after another: after the first, each read takes the next frame's
    /// prefix alone, then its payload straight into a kept buffer, whose earlier bytes never
    /// show; a small frame after them is read as usual.
    #[test]
    fn frames_after_a_large_one_read_their_prefix_alone_into_kept_buffers() {
        let big = crate::frame_pool::POOLED_MIN + 1000;
        let msgs = [
            Message::new(vec![1u8; big]),
            Message::new(vec![2u8; big - 10]),
            Message::new(vec![3u8; big]),
            Message::new(&b"small"[..]),
        ];
        let bytes: Vec<u8> = msgs.iter().flat_map(wire).collect();
        let mut stream = &bytes[..];
        let mut inbound = inbound();
        let mut got = Vec::new();
        let mut asked = Vec::new();
        while !stream.is_empty() {
            asked.push(read_from(&mut inbound, &mut stream));
            inbound.decode_batch();
            // Dropped at once, so the next large frame may take this one's buffer.
            got.extend(inbound.held.drain(..).map(|m| m.body.to_vec()));
        }
        let sent: Vec<Vec<u8>> = msgs.iter().map(|m| m.body.to_vec()).collect();
        assert_eq!(got, sent);
        let prefix = FrameKind::Tcp.prefix_len();
        assert_eq!(
            asked.iter().filter(|&&n| n == prefix).count(),
            3,
            "after each large frame, a read of the next prefix alone: {asked:?}"
        );
    }

    #[test]
    fn a_pipe_has_a_delivery_ready_only_with_a_whole_frame_buffered() {
        let mut inbound = inbound();
        assert!(!inbound.has_ready(), "nothing buffered");
        let frame = wire(&Message::new(&b"hello"[..]));
        inbound.rbuf.extend_from_slice(&frame[..frame.len() - 1]);
        assert!(!inbound.has_ready(), "a partial frame");
        inbound.rbuf.extend_from_slice(&frame[frame.len() - 1..]);
        assert!(inbound.has_ready(), "a whole frame");
    }

    #[test]
    fn a_closed_pipe_hands_back_framed_messages_in_order_with_the_same_bytes() {
        let h = handle();
        h.frame_on_enqueue(FrameKind::Tcp);
        let msgs = queue_mixed(&h);
        h.close();
        let unsent = h.take_unsent();
        assert_eq!(unsent.len(), 4);
        for (back, sent) in unsent.iter().zip(&msgs) {
            assert_eq!(back.to_contiguous(), sent.to_contiguous());
        }
        assert_eq!(h.stats().returned, 4);
        assert_eq!(h.queued(), 0);
    }

    /// A connection whose reads return the scripted chunks, one per read, then `Pending`; it
    /// counts reads and takes every write.
    struct ScriptedStream {
        chunks: VecDeque<Vec<u8>>,
        reads: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl futures_io::AsyncRead for ScriptedStream {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            match self.chunks.pop_front() {
                Some(chunk) => {
                    assert!(chunk.len() <= buf.len(), "scripted chunks fit one read");
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Poll::Ready(Ok(chunk.len()))
                }
                None => Poll::Pending,
            }
        }
    }

    /// A test connection whose writes all go through whole at once.
    macro_rules! takes_every_write {
        ($stream:ty) => {
            impl AsyncWrite for $stream {
                fn poll_write(
                    self: Pin<&mut Self>,
                    _cx: &mut Context<'_>,
                    buf: &[u8],
                ) -> Poll<io::Result<usize>> {
                    Poll::Ready(Ok(buf.len()))
                }

                fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    Poll::Ready(Ok(()))
                }

                fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    Poll::Ready(Ok(()))
                }
            }
        };
    }

    takes_every_write!(ScriptedStream);

    /// A socket whose core takes up to `per_delivery` messages at a time and wakes a waiting
    /// receiver with each delivery.
    struct WakingOwner {
        per_delivery: usize,
        delivered: Mutex<Vec<Message>>,
        /// What `receivers_have_own_threads` answers.
        own_threads: bool,
        /// Every delivery pauses the pipe (a full receive queue).
        pausing: bool,
        /// Every delivery wakes several receivers (contexts).
        wakes_several: bool,
    }

    impl WakingOwner {
        fn new(per_delivery: usize) -> Self {
            Self {
                per_delivery,
                delivered: Mutex::new(Vec::new()),
                own_threads: false,
                pausing: false,
                wakes_several: false,
            }
        }
    }

    impl PipeOwner for WakingOwner {
        fn allocate_pipe_id(&self) -> PipeId {
            PipeId::new(1).unwrap()
        }
        fn attach(&self, _handle: Arc<PipeHandle>) -> Result<(), RefusalReason> {
            Ok(())
        }
        fn accepted(&self, _endpoint: &crate::endpoint::EndpointCtl) {}
        fn span(&self) -> tracing::Span {
            tracing::Span::none()
        }
        fn refused(&self, _endpoint: Option<crate::pipe_view::EndpointId>, _: RefusalReason) {}
        fn deliver(
            &self,
            pipe: &PipeHandle,
            next: &mut dyn FnMut() -> Option<Message>,
        ) -> Delivery {
            let mut delivered = lock(&self.delivered);
            let mut messages = 0;
            while messages < self.per_delivery as u64 {
                let Some(msg) = next() else { break };
                delivered.push(msg);
                messages += 1;
            }
            if self.pausing {
                pipe.set_paused();
            }
            Delivery {
                receiving: !self.pausing,
                receivers_woken: match (messages, self.wakes_several) {
                    (0, _) => 0,
                    (_, false) => 1,
                    (_, true) => 2,
                },
                messages,
            }
        }
        fn pipe_writable(&self, _pipe: PipeId) {}
        fn pipe_closed(&self, _pipe: PipeId, _end: &PipeEnd) {}
        fn protocol(&self) -> ProtocolId {
            ProtocolId::PAIR1
        }
        fn peer_protocol(&self) -> ProtocolId {
            ProtocolId::PAIR1
        }
        fn is_closed(&self) -> bool {
            false
        }
        fn receivers_have_own_threads(&self) -> bool {
            self.own_threads
        }
    }

    /// A waker that counts its wake-ups: the pipe task's wake-ups of itself.
    struct CountingWake(std::sync::atomic::AtomicUsize);

    impl CountingWake {
        /// The counter, and a waker that counts on it.
        fn new() -> (Arc<Self>, Waker) {
            let wake = Arc::new(Self(std::sync::atomic::AtomicUsize::new(0)));
            (wake.clone(), Waker::from(wake))
        }
    }

    impl std::task::Wake for CountingWake {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Polls a stream pipe once over `chunks`, its core taking `per_delivery` messages a
    /// time, on a runtime with `defer_yield`. Returns (messages delivered, reads made, the
    /// task's wake-ups of itself).
    fn poll_pipe_once(
        chunks: Vec<Vec<u8>>,
        per_delivery: usize,
        defer_yield: Option<fn(&mut Context<'_>)>,
    ) -> (usize, usize, usize) {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream = ScriptedStream {
            chunks: chunks.into(),
            reads: reads.clone(),
        };
        let owner = Arc::new(WakingOwner::new(per_delivery));
        let mut pipe = StreamPipe::new(
            owner.clone(),
            handle(),
            Box::new(stream),
            FrameKind::Tcp,
            1 << 20,
            BytesMut::new(),
            Turns {
                defer_yield,
                ..Turns::default()
            },
        );
        let (wake, waker) = CountingWake::new();
        let polled = Pin::new(&mut pipe).poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending(), "the connection stays open");
        let delivered = lock(&owner.delivered).len();
        (
            delivered,
            reads.load(Ordering::Relaxed),
            wake.0.load(Ordering::Relaxed),
        )
    }

    /// A connection that never has bytes to read and takes every write whole, counting
    /// writes; its first write queues `during_first_write` on `handle`, as a sender on
    /// another thread would while the write runs.
    struct SinkStream {
        writes: Arc<std::sync::atomic::AtomicUsize>,
        during_first_write: Option<(Arc<PipeHandle>, Message)>,
    }

    impl futures_io::AsyncRead for SinkStream {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for SinkStream {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            if let Some((handle, msg)) = self.during_first_write.take() {
                handle.enqueue(msg, 100);
            }
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A connection's writing side that takes at most `room` bytes in all, recording them.
    struct RecordingWriter {
        written: Mutex<Vec<u8>>,
        room: Mutex<usize>,
    }

    impl crate::rt::DirectWrite for RecordingWriter {
        fn try_write(&self, buf: &[u8]) -> Option<usize> {
            let mut room = lock(&self.room);
            let n = buf.len().min(*room);
            if n == 0 {
                return None;
            }
            *room -= n;
            lock(&self.written).extend_from_slice(&buf[..n]);
            Some(n)
        }
    }

    /// A framing handle whose connection a sender may write (`room` bytes in all), with its
    /// writer idle: registered for the next message with a waker that counts its wake-ups.
    fn idle_shared_pipe(room: usize) -> (Arc<PipeHandle>, Arc<RecordingWriter>, Arc<CountingWake>) {
        let h = handle();
        h.frame_on_enqueue(FrameKind::Tcp);
        let written = Arc::new(RecordingWriter {
            written: Mutex::new(Vec::new()),
            room: Mutex::new(room),
        });
        h.share_writer(DirectWriter(written.clone()));
        let (counter, waker) = CountingWake::new();
        let mut out = Outbound::new(FrameKind::Tcp);
        out.take(&h, &waker);
        (h, written, counter)
    }

    #[test]
    fn a_send_that_answers_a_delivery_is_written_on_the_sending_task() {
        let (h, written, woken) = idle_shared_pipe(usize::MAX);
        let reply = Message::new(b"reply".to_vec());
        h.delivered();
        assert!(h.enqueue(reply.clone(), 10));
        assert_eq!(
            *lock(&written.written),
            wire(&reply),
            "the whole frame, at once"
        );
        assert_eq!(
            woken.0.load(Ordering::Relaxed),
            0,
            "the pipe's task stays asleep"
        );
        assert_eq!(h.queued(), 0);
        // The next send answers nothing: it waits for the pipe's task, which is woken.
        let next = Message::new(b"next".to_vec());
        assert!(h.enqueue(next.clone(), 10));
        assert_eq!(*lock(&written.written), wire(&reply));
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
        assert_eq!(h.queued(), 1);
        h.close();
        let unsent: Vec<_> = h.take_unsent().into_iter().map(|m| m.body).collect();
        assert_eq!(unsent, vec![next.body]);
    }

    #[test]
    fn a_direct_write_cut_short_leaves_the_rest_to_the_pipes_task_and_never_hands_it_back() {
        let reply = Message::new(b"a reply of some length".to_vec());
        let frame = wire(&reply);
        let (h, written, woken) = idle_shared_pipe(5);
        h.delivered();
        h.enqueue(reply, 10);
        assert_eq!(*lock(&written.written), frame[..5], "what the stream took");
        assert_eq!(
            woken.0.load(Ordering::Relaxed),
            1,
            "the pipe's task writes the rest"
        );
        // The pipe's task takes exactly the rest.
        let mut framed = BytesMut::new();
        let mut unframed = VecDeque::new();
        h.take_framed(&mut framed, &mut unframed, Waker::noop(), false);
        assert_eq!(framed[..], frame[5..]);
        // Cut short again, then closed before the pipe's task ran: the partial message is
        // lost, not handed back to the protocol as if it had never been sent.
        let (h, _, _) = idle_shared_pipe(5);
        h.delivered();
        h.enqueue(Message::new(b"a reply of some length".to_vec()), 10);
        let after = Message::new(b"queued behind".to_vec());
        h.enqueue(after.clone(), 10);
        h.close();
        let unsent: Vec<_> = h.take_unsent().into_iter().map(|m| m.body).collect();
        assert_eq!(unsent, vec![after.body]);
        assert_eq!(h.stats().dropped_on_close, 1);
    }

    #[test]
    fn a_closed_pipe_lets_go_of_its_stream() {
        let (h, _, _) = idle_shared_pipe(usize::MAX);
        h.close();
        assert!(
            lock(&h.q).direct.is_none(),
            "the connection closes with the pipe's task"
        );
    }

    thread_local! {
        static WOKEN_LATER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A runtime's `wake_later` that counts its calls on this thread and wakes at once.
    fn counting_wake_later(waker: &Waker) {
        WOKEN_LATER.set(WOKEN_LATER.get() + 1);
        waker.wake_by_ref();
    }

    /// Queues `first` messages of `size` bytes and polls a stream pipe with `wake_later`
    /// once, while its first write queues one more message. Returns (writes, messages still
    /// queued, `wake_later` calls).
    fn write_while_sending(
        first: usize,
        size: usize,
        wake_later: Option<fn(&Waker)>,
    ) -> (usize, usize, usize) {
        let h = handle();
        for _ in 0..first {
            h.enqueue(Message::new(vec![1u8; size]), 100);
        }
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream = SinkStream {
            writes: writes.clone(),
            during_first_write: Some((h.clone(), Message::new(&b"next"[..]))),
        };
        let owner = Arc::new(WakingOwner::new(1));
        let mut pipe = StreamPipe::new(
            owner,
            h.clone(),
            Box::new(stream),
            FrameKind::Tcp,
            1 << 20,
            BytesMut::new(),
            Turns {
                wake_later,
                ..Turns::default()
            },
        );
        WOKEN_LATER.set(0);
        let polled = Pin::new(&mut pipe).poll(&mut Context::from_waker(Waker::noop()));
        assert!(polled.is_pending(), "the connection stays open");
        (
            writes.load(Ordering::Relaxed),
            h.queued(),
            WOKEN_LATER.get(),
        )
    }

    #[test]
    fn a_writer_that_can_be_woken_later_leaves_what_came_during_a_small_write_for_then() {
        // One write of the three, and the message queued meanwhile waits for the wake-up.
        assert_eq!(
            write_while_sending(3, 64, Some(counting_wake_later)),
            (1, 1, 1)
        );
        // Without `wake_later` the writer takes it at once.
        assert_eq!(write_while_sending(3, 64, None), (2, 0, 0));
    }

    #[test]
    fn a_writer_takes_on_at_once_after_a_large_batch() {
        // 3 x 8 KiB is more than a small batch: no pause, the next message goes out too (and,
        // a small batch itself, asks for the wake-up).
        assert_eq!(
            write_while_sending(3, 8 * 1024, Some(counting_wake_later)),
            (2, 0, 1)
        );
    }

    /// One side of an inproc link fed by `owner`, with `queued` messages from its peer
    /// waiting; returns the pipe and the peer's handle.
    fn inproc_link(owner: &Arc<WakingOwner>, queued: usize) -> (InprocPipe, Arc<PipeHandle>) {
        let peer = handle();
        for _ in 0..queued {
            peer.enqueue(Message::with_header(&b"\0\0\0\x01"[..], &b"hi"[..]), 100);
        }
        let pipe = InprocPipe::new(owner.clone(), handle(), owner.clone(), peer.clone());
        (pipe, peer)
    }

    /// Polls one side of an inproc link once, with `queued` messages from the peer, its core
    /// taking one message a delivery. Returns (messages delivered, the task's wake-ups of
    /// itself, wake-ups after the peer queues one more message).
    fn poll_inproc_once(queued: usize, own_threads: bool) -> (usize, usize, usize) {
        let owner = Arc::new(WakingOwner {
            own_threads,
            ..WakingOwner::new(1)
        });
        let (mut pipe, peer) = inproc_link(&owner, queued);
        let (wake, waker) = CountingWake::new();
        let polled = pipe.poll_run(&mut Context::from_waker(&waker));
        assert!(polled.is_pending(), "the link stays open");
        let own = wake.0.load(Ordering::Relaxed);
        peer.enqueue(Message::new(&b"next"[..]), 100);
        let delivered = lock(&owner.delivered).len();
        (delivered, own, wake.0.load(Ordering::Relaxed) - own)
    }

    #[test]
    fn an_inproc_pipe_delivers_all_it_took_and_then_waits_for_the_next() {
        // No self-wake (which ran the task again for nothing, often on another thread); the
        // peer's next message wakes it.
        assert_eq!(poll_inproc_once(1, false), (1, 0, 1));
        // With more queued, it delivers on although the first delivery woke the receiver,
        // then waits the same way.
        assert_eq!(poll_inproc_once(2, false), (2, 0, 1));
    }

    /// A paused inproc pipe (one message delivered, `queued - 1` left) whose peer then
    /// closes: returns whether the close woke it, what its next poll gave, and whether that
    /// poll woke the task itself (a spin).
    fn close_while_paused(queued: usize) -> (bool, Poll<PipeEnd>, bool) {
        let owner = Arc::new(WakingOwner {
            pausing: true,
            ..WakingOwner::new(1)
        });
        let (mut pipe, peer) = inproc_link(&owner, queued);
        let (wake, waker) = CountingWake::new();
        let mut cx = Context::from_waker(&waker);
        assert!(pipe.poll_run(&mut cx).is_pending(), "paused");
        assert_eq!(lock(&owner.delivered).len(), 1);
        assert_eq!(wake.0.load(Ordering::Relaxed), 0, "asleep until resumed");
        peer.close();
        let after_close = wake.0.load(Ordering::Relaxed);
        let polled = pipe.poll_run(&mut cx);
        let spun = wake.0.load(Ordering::Relaxed) > after_close;
        (after_close > 0, polled, spun)
    }

    #[test]
    fn a_paused_inproc_pipe_delivers_its_closed_peers_last_messages_in_order() {
        let owner = Arc::new(WakingOwner {
            pausing: true,
            ..WakingOwner::new(1)
        });
        let (mut pipe, peer) = inproc_link(&owner, 0);
        let body = |m: &Message| m.body.clone();
        for b in [&b"a"[..], b"b", b"c"] {
            peer.enqueue(Message::new(b), 100);
        }
        let mut cx = Context::from_waker(Waker::noop());
        assert!(pipe.poll_run(&mut cx).is_pending(), "paused, b and c held");
        assert_eq!(pipe.inbox.len(), 2);
        peer.enqueue(Message::new(&b"d"[..]), 100);
        peer.close();
        let mut polls = 0;
        while pipe.poll_run(&mut cx).is_pending() {
            if let Some(w) = pipe.handle.resume() {
                w.wake();
            }
            polls += 1;
            assert!(polls < 10, "the pipe ends once it delivered everything");
        }
        let got: Vec<_> = lock(&owner.delivered).iter().map(body).collect();
        assert_eq!(got, [&b"a"[..], b"b", b"c", b"d"], "none lost, in order");
        assert_eq!(peer.queued(), 0);
    }

    #[test]
    fn a_paused_inproc_pipe_ends_when_its_peer_closes_with_nothing_left() {
        let (woken, polled, _) = close_while_paused(1);
        assert!(woken, "the peer's close wakes the paused pipe");
        assert!(matches!(polled, Poll::Ready(PipeEnd::PeerClosed)));
    }

    /// A paused pipe's feeder is registered by the check that finds the pause, and woken by
    /// the resume; an unpaused pipe's check registers nothing.
    #[test]
    fn the_resume_wakes_the_feeder_that_found_the_pipe_paused() {
        let h = handle();
        let (count, waker) = CountingWake::new();
        assert!(h.poll_resumed(&waker));
        assert!(
            lock(&h.q).feeder.is_none(),
            "not paused: nothing registered"
        );
        h.set_paused();
        assert!(!h.poll_resumed(&waker));
        h.resume().expect("the feeder registered").wake();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(h.poll_resumed(&waker));
    }

    #[test]
    fn a_paused_inproc_pipe_with_messages_left_waits_for_the_resume() {
        let (woken, polled, spun) = close_while_paused(2);
        assert!(woken);
        assert!(
            polled.is_pending(),
            "one message still to deliver once resumed"
        );
        assert!(
            !spun,
            "it sleeps until the resume instead of polling itself again"
        );
    }

    #[test]
    fn an_inproc_pipe_yields_after_a_delivery_that_woke_several_receivers() {
        // Contexts: they answer before the pipe delivers more, so that their replies go out
        // together.
        let owner = Arc::new(WakingOwner {
            wakes_several: true,
            ..WakingOwner::new(1)
        });
        let (mut pipe, _peer) = inproc_link(&owner, 2);
        let (wake, waker) = CountingWake::new();
        assert!(pipe.poll_run(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(lock(&owner.delivered).len(), 1);
        assert_eq!(wake.0.load(Ordering::Relaxed), 1, "it yields");
    }

    #[test]
    fn an_inproc_pipe_whose_receivers_have_own_threads_yields_after_waking_one() {
        assert_eq!(poll_inproc_once(1, true), (1, 0, 1));
        // With more queued, it yields so that the woken receiver's thread takes what it
        // was given before the pipe delivers more. Its take registered it for the peer's
        // next message as well (which then wakes a task already woken: nothing more).
        assert_eq!(poll_inproc_once(2, true), (1, 1, 1));
    }

    #[test]
    fn an_inproc_pipe_that_delivers_what_an_earlier_poll_took_registers_again() {
        // Receivers on threads of their own: a take registers for the peer's next message
        // even when it finds some. Here the second poll takes nothing at first (it delivers
        // what the first one took), after a message whose enqueue used up the first poll's
        // registration: it must take and register again before it waits.
        let owner = Arc::new(WakingOwner {
            own_threads: true,
            ..WakingOwner::new(1)
        });
        let (mut pipe, peer) = inproc_link(&owner, 2);
        let (wake, waker) = CountingWake::new();
        let mut cx = Context::from_waker(&waker);
        assert!(pipe.poll_run(&mut cx).is_pending());
        assert_eq!(lock(&owner.delivered).len(), 1, "one delivered, one held");
        let woken = wake.0.load(Ordering::Relaxed);
        peer.enqueue(Message::new(&b"third"[..]), 100);
        assert!(pipe.poll_run(&mut cx).is_pending());
        assert_eq!(
            lock(&owner.delivered).len(),
            2,
            "the held one; the third taken"
        );
        assert_eq!(pipe.inbox.len(), 1);
        let before = wake.0.load(Ordering::Relaxed);
        assert!(before > woken, "the third's enqueue woke it");
        peer.enqueue(Message::new(&b"fourth"[..]), 100);
        assert_eq!(
            wake.0.load(Ordering::Relaxed),
            before + 1,
            "the next message wakes it"
        );
    }

    #[test]
    fn one_message_that_woke_a_receiver_ends_the_poll_when_no_more_bytes_came() {
        // The receiver runs next on this thread: no self-wake, which on tokio would have put
        // this task in the receiver's place. One read for the frame, one that found nothing.
        let frame = wire(&Message::new(&b"ping"[..]));
        assert_eq!(poll_pipe_once(vec![frame], 1, None), (1, 2, 0));
    }

    #[test]
    fn one_message_that_woke_a_receiver_yields_when_more_is_buffered() {
        // Two frames in one read, the core takes one: the receiver gets its turn before the
        // second is delivered, so the task wakes itself and reads no more.
        let mut chunk = wire(&Message::new(&b"one"[..]));
        chunk.extend(wire(&Message::new(&b"two"[..])));
        assert_eq!(poll_pipe_once(vec![chunk], 1, None), (1, 1, 1));
    }

    thread_local! {
        static DEFERRED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A runtime's `defer_yield` that counts its calls on this thread and wakes nothing.
    fn count_deferral(_cx: &mut Context<'_>) {
        DEFERRED.set(DEFERRED.get() + 1);
    }

    #[test]
    fn the_yield_to_one_woken_receiver_is_deferred_where_the_runtime_can() {
        // As above, on a runtime that defers yields (tokio): the task asks the runtime to poll
        // it after the receiver instead of waking itself, which on tokio would wake another
        // worker to take it.
        let mut chunk = wire(&Message::new(&b"one"[..]));
        chunk.extend(wire(&Message::new(&b"two"[..])));
        DEFERRED.set(0);
        assert_eq!(
            poll_pipe_once(vec![chunk], 1, Some(count_deferral)),
            (1, 1, 0)
        );
        assert_eq!(DEFERRED.get(), 1);
    }

    #[test]
    fn several_messages_that_woke_receivers_yield_so_their_replies_go_out_together() {
        let mut chunk = wire(&Message::new(&b"one"[..]));
        chunk.extend(wire(&Message::new(&b"two"[..])));
        assert_eq!(poll_pipe_once(vec![chunk], 64, None), (2, 1, 1));
    }

    /// A connection fed by the test: reads take what was fed, in order, then the end once
    /// `end` is set; a read that finds nothing registers its waker, which a feed wakes.
    #[derive(Clone, Default)]
    struct FedStream(Arc<Mutex<Fed>>);

    #[derive(Default)]
    struct Fed {
        chunks: VecDeque<Vec<u8>>,
        end: bool,
        reads: usize,
        reader: Option<Waker>,
    }

    impl FedStream {
        fn feed(&self, chunk: Option<Vec<u8>>) {
            let mut fed = lock(&self.0);
            match chunk {
                Some(chunk) => fed.chunks.push_back(chunk),
                None => fed.end = true,
            }
            if let Some(w) = fed.reader.take() {
                w.wake();
            }
        }

        fn reads(&self) -> usize {
            lock(&self.0).reads
        }
    }

    impl futures_io::AsyncRead for FedStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut fed = lock(&self.0);
            fed.reads += 1;
            match fed.chunks.pop_front() {
                Some(chunk) => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Poll::Ready(Ok(chunk.len()))
                }
                None if fed.end => Poll::Ready(Ok(0)),
                None => {
                    fed.reader = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    takes_every_write!(FedStream);

    /// A stream pipe over a [`FedStream`] whose core takes everything: its handle, owner and
    /// connection.
    fn fed_pipe() -> (Arc<PipeHandle>, Arc<WakingOwner>, FedStream, StreamPipe) {
        let stream = FedStream::default();
        let owner = Arc::new(WakingOwner::new(usize::MAX));
        let handle = handle();
        let pipe = StreamPipe::new(
            owner.clone(),
            handle.clone(),
            Box::new(stream.clone()),
            FrameKind::Tcp,
            1 << 20,
            BytesMut::new(),
            Turns::default(),
        );
        (handle, owner, stream, pipe)
    }

    #[test]
    fn a_receiving_task_polls_a_woken_pipe_and_its_task_finds_the_end() {
        let (handle, owner, stream, pipe) = fed_pipe();
        let (task_wakes, task_waker) = CountingWake::new();
        let mut task_cx = Context::from_waker(&task_waker);
        let mut task = std::pin::pin!(handle.runner.run(pipe));
        assert!(task.as_mut().poll(&mut task_cx).is_pending());
        // Nothing came: the pipe waits for bytes, and a receiver leaves it alone (no read).
        assert!(!handle.runner.has_work());
        assert!(!handle.runner.poll_for_receiver(false));
        assert_eq!(stream.reads(), 1);

        // Bytes come: the pipe's task is woken, and a receiver that polls first delivers them.
        // It leaves the writing to the task: a message queued meanwhile stays queued.
        stream.feed(Some(wire(&Message::new(&b"one"[..]))));
        assert_eq!(task_wakes.0.load(Ordering::Relaxed), 1);
        handle.enqueue(Message::new(&b"out"[..]), 16);
        assert!(handle.runner.has_work());
        assert!(handle.runner.poll_for_receiver(false));
        assert_eq!(lock(&owner.delivered).len(), 1);
        assert!(!handle.runner.has_work(), "the receiver did the reading");
        assert_eq!(handle.queued(), 1, "the receiver wrote nothing");
        assert!(task.as_mut().poll(&mut task_cx).is_pending());
        assert_eq!(handle.queued(), 0, "the task wrote it");

        // The peer closes: the receiver's poll ends the pipe, and its task reports the end.
        let wakes = task_wakes.0.load(Ordering::Relaxed);
        stream.feed(None);
        assert!(handle.runner.poll_for_receiver(false));
        assert_eq!(
            task_wakes.0.load(Ordering::Relaxed),
            wakes + 2,
            "woken by the end, then to detach"
        );
        match task.as_mut().poll(&mut task_cx) {
            Poll::Ready(PipeEnd::PeerClosed) => {}
            other => panic!("expected the peer's close, got {other:?}"),
        }
        assert!(
            !handle.runner.poll_for_receiver(false),
            "an ended pipe is polled no more"
        );
    }

    /// A [`DirectRead`](crate::rt::DirectRead) over a [`FedStream`]'s chunks: it takes them
    /// as the stream's own reads do, without a waker, and counts its reads apart.
    struct FedDirect(FedStream, AtomicUsize);

    impl crate::rt::DirectRead for FedDirect {
        fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
            self.1.fetch_add(1, Ordering::Relaxed);
            let mut fed = lock(&self.0 .0);
            match fed.chunks.pop_front() {
                Some(chunk) => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Ok(chunk.len())
                }
                None if fed.end => Ok(0),
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    #[test]
    fn a_receiving_task_reads_a_pipe_directly_before_anything_woke_it() {
        let (handle, owner, stream, pipe) = fed_pipe();
        let direct = Arc::new(FedDirect(stream.clone(), AtomicUsize::new(0)));
        let pipe = pipe.with_direct_reader(Some(DirectReader(direct.clone())));
        let (task_wakes, task_waker) = CountingWake::new();
        let mut task_cx = Context::from_waker(&task_waker);
        let mut task = std::pin::pin!(handle.runner.run(pipe));
        assert!(task.as_mut().poll(&mut task_cx).is_pending());
        assert!(handle.runner.reads_directly());
        let stream_reads = stream.reads();

        // Nothing came: a direct read finds nothing, and a plain poll is not even tried.
        assert!(handle.runner.poll_for_receiver(true));
        assert!(!handle.runner.poll_for_receiver(false));
        assert_eq!(direct.1.load(Ordering::Relaxed), 1);

        // Bytes came that nothing has reported yet (no wake-up, as before the reactor's
        // turn): the direct read delivers them, through neither the stream nor a wake-up.
        lock(&stream.0)
            .chunks
            .push_back(wire(&Message::new(&b"one"[..])));
        assert!(!handle.runner.has_work());
        assert!(handle.runner.poll_for_receiver(true));
        assert_eq!(lock(&owner.delivered).len(), 1);
        assert_eq!(
            stream.reads(),
            stream_reads,
            "the stream itself was not read"
        );
        assert_eq!(task_wakes.0.load(Ordering::Relaxed), 0);
        assert!(!handle.runner.sends_bulk(), "a small read is no bulk");

        // The peer closes: the direct read ends the pipe, and its task reports the end.
        stream.feed(None);
        assert!(handle.runner.poll_for_receiver(true));
        match task.as_mut().poll(&mut task_cx) {
            Poll::Ready(PipeEnd::PeerClosed) => {}
            other => panic!("expected the peer's close, got {other:?}"),
        }
    }

    #[test]
    fn a_pipe_without_a_direct_reader_is_not_read_directly() {
        let (handle, _owner, stream, pipe) = fed_pipe();
        let (_wakes, waker) = CountingWake::new();
        let mut task = std::pin::pin!(handle.runner.run(pipe));
        assert!(task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let reads = stream.reads();
        assert!(!handle.runner.reads_directly());
        assert!(!handle.runner.poll_for_receiver(true));
        assert_eq!(stream.reads(), reads);
    }

    #[test]
    fn a_pipe_task_that_finds_a_receiver_polling_is_woken_when_it_is_done() {
        let (handle, owner, stream, pipe) = fed_pipe();
        let (task_wakes, task_waker) = CountingWake::new();
        let mut task_cx = Context::from_waker(&task_waker);
        let mut task = std::pin::pin!(handle.runner.run(pipe));
        assert!(task.as_mut().poll(&mut task_cx).is_pending());
        let reads = stream.reads();

        // Polled while a receiver holds the pipe: the task returns without touching it.
        handle
            .runner
            .with_cell_taken(|| assert!(task.as_mut().poll(&mut task_cx).is_pending()));
        assert_eq!(stream.reads(), reads, "the task did not poll the pipe");
        assert_eq!(task_wakes.0.load(Ordering::Relaxed), 0);

        // The receiver's poll (here with nothing to read) ends by waking the task.
        handle.runner.set_streaming(true);
        assert!(handle.runner.poll_for_receiver(false));
        assert_eq!(
            task_wakes.0.load(Ordering::Relaxed),
            1,
            "the task runs again"
        );
        // Only once: a later receiver's poll does not wake it again.
        handle.runner.set_streaming(true);
        assert!(handle.runner.poll_for_receiver(false));
        assert_eq!(task_wakes.0.load(Ordering::Relaxed), 1);

        // And the task, run again, does its work.
        stream.feed(Some(wire(&Message::new(&b"one"[..]))));
        assert!(task.as_mut().poll(&mut task_cx).is_pending());
        assert_eq!(lock(&owner.delivered).len(), 1);
    }

    #[test]
    fn a_pipe_task_dropped_before_its_pipe_ends_drops_the_pipe() {
        let (handle, _owner, _stream, pipe) = fed_pipe();
        let (_wakes, waker) = CountingWake::new();
        let mut task = Box::pin(handle.runner.run(pipe));
        assert!(task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(task);
        // The pipe held references to its handle, which holds the runner: none is left.
        assert_eq!(Arc::strong_count(&handle), 1);
    }
}
