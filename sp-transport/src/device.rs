//! Devices and reflectors (SP-PROTOCOLS.md section 5.2): message forwarding between raw
//! sockets, generic over the runtime.
//!
//! A device moves every message, header and body, unchanged from one raw socket to another
//! and back. It makes no routing decision of its own: XREP pushes the pipe a request came in
//! on and pops it to route the reply, XREQ load-balances, XPAIR1 and XSTAR count hops, and the
//! TTL checks of those raw cores are what stops loops. A device only needs each socket's async
//! `send` and `recv`, so the same code runs on tokio, smol and the blocking adapter's threads.
//!
//! ```text
//!  clients (REQ) ---> [ XREP ] --recv--> device --send--> [ XREQ ] ---> servers (REP)
//!                     [      ] <--send-- device <--recv-- [      ]
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use sp_core::ProtocolId;

use crate::error::{Error, Result};
use crate::rt::Runtime;
use crate::socket::{Socket, SocketCore};

/// Forwards messages between two raw sockets, in both directions, until one of them closes.
///
/// The sockets must both be raw, and each must speak the protocol the other takes as its
/// peer: XREP with XREQ, XRESPONDENT with XSURVEYOR, XSUB with XPUB, XPULL with XPUSH, or two
/// sockets of XPAIR, XPAIR1, XBUS or XSTAR. A direction whose receiving socket cannot receive
/// (XPUB, XPUSH) or whose sending socket cannot send (XSUB, XPULL) does not run, so a PUB/SUB
/// or pipeline device forwards one way only.
///
/// Delivery is best effort, as in NNG: a receive that times out (a receive timeout is set) is
/// simply retried, and a message the other socket refuses (its send timeout passed, or it
/// rejects the header) is discarded. Each send waits as long as the sending socket's send
/// timeout allows, so with the default (no timeout) a broker with no server attached holds
/// the request until one connects.
///
/// The device returns `Ok(())` once either socket is closed (by [`Socket::close`] on any
/// clone, or by dropping every other handle). It does not close the sockets itself: the
/// caller owns them, and closes the other one if it wants both gone. Dropping the returned
/// future stops the device at once.
///
/// # Errors
/// [`Error::NotRaw`] when either socket is cooked, [`Error::IncompatibleDevice`] when the
/// protocols do not face each other, and [`Error::DeviceBusy`] when either socket already
/// runs in another device or reflector (NNG's `NNG_EBUSY`); nothing is forwarded then.
///
/// # Cancel safety
/// Dropping the future stops the forwarding. A message the device had received and not yet
/// sent when it was dropped is lost (devices are best effort, like NNG's and mangos').
///
pub async fn device<R, A, B>(a: &Socket<R, A>, b: &Socket<R, B>) -> Result<()>
where
    R: Runtime,
    A: SocketCore,
    B: SocketCore,
{
    let (a_info, b_info) = (Side::of(a), Side::of(b));
    if !a_info.raw || !b_info.raw {
        return Err(Error::NotRaw);
    }
    if a_info.protocol != b_info.peer || b_info.protocol != a_info.peer {
        return Err(Error::IncompatibleDevice {
            a: a_info.protocol,
            b: b_info.protocol,
        });
    }
    // `device(&s, &s)` reflects, as NNG's does: one claim for the one socket.
    let (flag_a, flag_b) = (&a.shared().in_device, &b.shared().in_device);
    let _claim_a = Claim::take(flag_a)?;
    let _claim_b = match std::ptr::eq(flag_a, flag_b) {
        true => None,
        false => Some(Claim::take(flag_b)?),
    };
    // The peer check leaves at least one direction: a socket that neither sends nor
    // receives does not exist.
    let forward_ab = (a_info.protocol.receives() && b_info.protocol.sends())
        .then(|| Box::pin(forward(a, b)) as Pin<Box<dyn Future<Output = ()> + Send + '_>>);
    let forward_ba = (b_info.protocol.receives() && a_info.protocol.sends())
        .then(|| Box::pin(forward(b, a)) as Pin<Box<dyn Future<Output = ()> + Send + '_>>);
    first_to_finish(forward_ab, forward_ba).await;
    Ok(())
}

/// Sends everything a raw socket receives straight back out on the same socket, until the
/// socket closes.
///
/// Only protocols that peer with themselves can be reflected: XPAIR, XPAIR1, XBUS and XSTAR.
/// An XBUS reflector is a BUS hub: the origin-pipe header it receives makes the send skip the
/// sender, so every other spoke gets the message and the sender does not get it back. An XPAIR
/// or XPAIR1 reflector echoes to its one peer (XPAIR1 adds a hop each time). An XSTAR already
/// relays on receipt, so reflecting it floods each message a second time.
///
/// Delivery is best effort, as in [`device`].
///
/// # Errors
/// [`Error::NotRaw`] for a cooked socket, [`Error::IncompatibleDevice`] for a protocol that
/// does not peer with itself, and [`Error::DeviceBusy`] when the socket already runs in a
/// device or reflector.
///
/// # Cancel safety
/// As [`device`].
///
pub async fn reflector<R: Runtime, P: SocketCore>(socket: &Socket<R, P>) -> Result<()> {
    let info = Side::of(socket);
    if !info.raw {
        return Err(Error::NotRaw);
    }
    if info.peer != info.protocol {
        return Err(Error::IncompatibleDevice {
            a: info.protocol,
            b: info.protocol,
        });
    }
    let _claim = Claim::take(&socket.shared().in_device)?;
    forward(socket, socket).await;
    Ok(())
}

/// A socket's place in a running device, given back when the device ends or is dropped.
struct Claim<'a>(&'a AtomicBool);

impl<'a> Claim<'a> {
    /// Takes the socket for a device.
    ///
    /// # Errors
    /// [`Error::DeviceBusy`] while another device holds it.
    fn take(in_device: &'a AtomicBool) -> Result<Self> {
        in_device
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| Self(in_device))
            .map_err(|_| Error::DeviceBusy)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What a device checks about one socket.
struct Side {
    protocol: ProtocolId,
    peer: ProtocolId,
    raw: bool,
}

impl Side {
    fn of<R: Runtime, P: SocketCore>(socket: &Socket<R, P>) -> Self {
        let (peer, raw) = socket.with_core(|core, _| (core.peer_protocol(), core.is_raw()));
        Self {
            protocol: socket.protocol(),
            peer,
            raw,
        }
    }
}

/// Moves messages from `from` to `to` until either socket closes (or cannot go on).
async fn forward<R, A, B>(from: &Socket<R, A>, to: &Socket<R, B>)
where
    R: Runtime,
    A: SocketCore,
    B: SocketCore,
{
    loop {
        let msg = match from.recv_any_role().await {
            Ok(msg) => msg,
            Err(Error::TimedOut | Error::WouldBlock) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "device stops: its receiving socket is done");
                return;
            }
        };
        match to.send_any_role(msg).await.map_err(Error::from) {
            Ok(()) => {}
            Err(Error::Closed) => {
                tracing::debug!("device stops: its sending socket is closed");
                return;
            }
            Err(e) => tracing::debug!(error = %e, "device discards a message"),
        }
    }
}

/// Runs the directions that exist and returns as soon as one of them ends: once one socket is
/// closed, the other direction would only wait forever on a receive.
async fn first_to_finish(
    mut a: Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>>,
    mut b: Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>>,
) {
    std::future::poll_fn(|cx| {
        for direction in [&mut a, &mut b].into_iter().flatten() {
            if direction.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}
