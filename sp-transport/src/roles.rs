//! Typed roles: which calls a socket of each protocol has. A PULL socket has no `send` and a
//! PUSH socket no `recv`, so the mistake is a compile error instead of `NotSupported` at run
//! time. The driver stays one generic [`Socket`](crate::Socket); these marker traits only
//! select which of its `impl` blocks apply.

use sp_core::protocol::bus::{Bus, XBus};
use sp_core::protocol::pair::{Pair, XPair};
use sp_core::protocol::pair1::{Pair1, Pair1Poly, XPair1};
use sp_core::protocol::pipeline::{Pull, Push, XPull, XPush};
use sp_core::protocol::pubsub::{Pub, Sub, XSub};
use sp_core::protocol::raw::XPub;
use sp_core::protocol::reqrep::{Rep, Req};
use sp_core::protocol::reqrep_raw::{XRep, XReq};
use sp_core::protocol::star::{Star, XStar};
use sp_core::protocol::survey::{Respondent, Surveyor, XRespondent, XSurveyor};

use crate::socket::SocketCore;

/// A role that sends: its sockets (and contexts) have `send`, `try_send`, `send_until` and
/// implement `Sink<Message>`.
pub trait SendRole: SocketCore {}

/// A role that receives: its sockets (and contexts) have `recv`, `try_recv`, `recv_until`
/// and implement `Stream`.
pub trait RecvRole: SocketCore {}

/// A role with contexts (NNG's `nng_ctx`): REQ, REP, SURVEYOR, RESPONDENT and SUB.
pub trait ContextRole: SocketCore {}

macro_rules! roles {
    ($trait:ident: $($core:ty),* $(,)?) => {
        $(impl $trait for $core {})*
    };
}

roles!(SendRole: Req, Rep, Push, Pair, Pair1, Pair1Poly, Pub, Bus, Surveyor, Respondent, Star,
    XReq, XRep, XPair, XPair1, XPush, XPub, XBus, XSurveyor, XRespondent, XStar);
roles!(RecvRole: Req, Rep, Pull, Pair, Pair1, Pair1Poly, Sub, Bus, Surveyor, Respondent, Star,
    XReq, XRep, XPair, XPair1, XPull, XSub, XBus, XSurveyor, XRespondent, XStar);
roles!(ContextRole: Req, Rep, Surveyor, Respondent, Sub);
