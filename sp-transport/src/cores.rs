//! How the driver creates each protocol core, and the protocol-specific socket settings.

use std::time::Duration;

use sp_core::protocol::bus::{Bus, BusConfig};
use sp_core::protocol::pair::{Pair, PairConfig};
use sp_core::protocol::pair1::{Pair1, Pair1Config};
use sp_core::protocol::pair1::{Pair1Poly, XPair1};
use sp_core::protocol::pipeline::{Pull, PullConfig, Push, PushConfig};
use sp_core::protocol::pipeline::{XPull, XPush};
use sp_core::protocol::pubsub::{Pub, PubConfig, Sub, SubConfig, SubscribeError};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::reqrep_raw::{XRep, XRepConfig, XReq, XReqConfig};
use sp_core::protocol::star::{Star, StarConfig, XStar};
use sp_core::protocol::survey::{Respondent, RespondentConfig, Surveyor, SurveyorConfig};
use sp_core::protocol::survey::{XRespondent, XRespondentConfig, XSurveyor, XSurveyorConfig};
use sp_core::protocol::{bus::XBus, pair::XPair, pubsub::XSub, raw::XPub};

use crate::error::{Error, Result};
use crate::rt::Runtime;
use crate::socket::{Socket, SocketCore};

impl SocketCore for Req {
    fn create(seed: u64) -> Self {
        Req::new(ReqConfig {
            seed,
            ..ReqConfig::default()
        })
    }
}

impl SocketCore for Rep {
    fn create(_seed: u64) -> Self {
        Rep::new(RepConfig::default())
    }
}

impl SocketCore for Push {
    fn create(_seed: u64) -> Self {
        Push::new(PushConfig::default())
    }
}

impl SocketCore for Pull {
    fn create(_seed: u64) -> Self {
        Pull::new(PullConfig::default())
    }
}

impl SocketCore for Pair {
    fn create(_seed: u64) -> Self {
        Pair::new(PairConfig::default())
    }
}

impl SocketCore for Pair1 {
    fn create(_seed: u64) -> Self {
        Pair1::new(Pair1Config::default())
    }
}

impl SocketCore for Pub {
    fn create(_seed: u64) -> Self {
        Pub::new(PubConfig::default())
    }
}

impl SocketCore for Sub {
    fn create(_seed: u64) -> Self {
        Sub::new(SubConfig::default())
    }
}

impl SocketCore for Bus {
    fn create(_seed: u64) -> Self {
        Bus::new(BusConfig::default())
    }
}

impl SocketCore for Surveyor {
    fn create(seed: u64) -> Self {
        Surveyor::new(SurveyorConfig {
            seed,
            ..SurveyorConfig::default()
        })
    }
}

impl SocketCore for Respondent {
    fn create(_seed: u64) -> Self {
        Respondent::new(RespondentConfig::default())
    }
}

/// Writes `SocketCore` for cores whose `new` takes a config with a `Default`.
macro_rules! default_cores {
    ($($core:ty => $config:expr),* $(,)?) => {
        $(impl SocketCore for $core {
            fn create(_seed: u64) -> Self {
                <$core>::new($config)
            }
        })*
    };
}

default_cores!(
    XReq => XReqConfig::default(),
    XRep => XRepConfig::default(),
    XPair => PairConfig::default(),
    XPair1 => Pair1Config::default(),
    Pair1Poly => Pair1Config::default(),
    XPush => PushConfig::default(),
    XPull => PullConfig::default(),
    XPub => PubConfig::default(),
    XSub => SubConfig::default(),
    XBus => BusConfig::default(),
    XSurveyor => XSurveyorConfig::default(),
    XRespondent => XRespondentConfig::default(),
    Star => StarConfig::default(),
    XStar => StarConfig::default(),
);

/// Writes `set_max_ttl` and `max_ttl` for sockets whose core has them. `$what` says what
/// the TTL counts, for the docs.
macro_rules! ttl_setters {
    ($($core:ty: $what:literal),* $(,)?) => {
        $(impl<R: Runtime> Socket<R, $core> {
            #[doc = concat!("Sets the TTL (1–255, default 8): ", $what)]
            ///
            /// # Errors
            /// [`Error::InvalidOption`] outside 1–255.
            pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
                self.with_core(|core, _| core.set_max_ttl(ttl))
                    .map_err(|e| Error::config("max_ttl", e))
            }

            /// Returns the TTL.
            pub fn max_ttl(&self) -> u8 {
                self.with_core(|core, _| core.max_ttl())
            }
        })*
    };
}

ttl_setters!(
    XRep: "the most backtrace words a request may carry; deeper ones are dropped.",
    XRespondent: "the most backtrace words a survey may carry; deeper ones are dropped.",
    XPair1: "the largest hop count a received message may carry; higher ones are dropped.",
    Pair1Poly: "the largest hop count a received message may carry; higher ones are dropped.",
    Star: "a received message whose hop count reaches it is dropped, not relayed.",
    XStar: "a received message whose hop count reaches it is dropped, not relayed.",
);

impl<R: Runtime> Socket<R, Req> {
    /// Returns how long REQ waits for a reply before sending the request again
    /// (`None`: never resends on a timer).
    pub fn resend_interval(&self) -> Option<Duration> {
        self.with_core(|core, _| core.resend_interval())
    }

    /// Sets how long REQ waits for a reply before resending (`None` disables timed resends and
    /// resends after a lost connection; the receive then fails with `ConnectionReset`).
    pub fn set_resend_interval(&self, interval: Option<Duration>) {
        self.with_core(|core, _| core.set_resend_interval(interval));
    }

    /// Returns the resend tick (NNG's `req:resend-tick`): the step resend deadlines are rounded
    /// up to (`None`: each resend happens exactly at its deadline).
    pub fn resend_tick(&self) -> Option<Duration> {
        self.with_core(|core, _| core.resend_tick())
    }

    /// Sets the resend tick for the socket and all its contexts (`None` or zero: no rounding).
    /// With a tick, a request is resent between the resend interval and the interval plus
    /// one tick after it was written, and the resends of many contexts fall on the same
    /// instants, so the socket's timer wakes once per tick rather than once per request.
    /// Applies to deadlines armed from then on.
    pub fn set_resend_tick(&self, tick: Option<Duration>) {
        self.with_core(|core, _| core.set_resend_tick(tick));
    }
}

impl<R: Runtime> Socket<R, Rep> {
    /// Sets the maximum number of backtrace hops (1–255, default 8) a request may carry.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] outside 1–255.
    pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
        self.with_core(|core, _| core.set_max_ttl(ttl))
            .map_err(|e| Error::config("max_ttl", e))
    }
}

impl<R: Runtime> Socket<R, Pair1> {
    /// Sets the largest hop count (1–255, default 8) a received message may carry; messages
    /// with more hops are dropped.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] outside 1–255.
    pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
        self.with_core(|core, _| core.set_max_ttl(ttl))
            .map_err(|e| Error::config("max_ttl", e))
    }
}

impl<R: Runtime> Socket<R, Sub> {
    /// Subscribes to `topic`: messages whose body starts with these bytes are delivered. The
    /// empty topic matches every message; with no topic nothing is delivered. Subscribing to a
    /// topic already present does nothing.
    pub fn subscribe(&self, topic: &[u8]) {
        self.with_core(|core, _| core.subscribe(topic));
    }

    /// Removes `topic`, and discards queued messages that no remaining topic matches.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] when `topic` is not subscribed (NNG's `NNG_ENOENT`).
    pub fn unsubscribe(&self, topic: &[u8]) -> Result<()> {
        self.with_core(|core, _| core.unsubscribe(topic))
            .map_err(|e| match e {
                SubscribeError::UnknownTopic => Error::UnknownTopic,
                _ => Error::NotSupported,
            })
    }
}

/// Writes the SUB prefer-new setting for the cooked and raw SUB sockets.
macro_rules! prefer_new_setters {
    ($($core:ty),* $(,)?) => {
        $(impl<R: Runtime> Socket<R, $core> {
            /// Returns what a full receive queue gives up: `true` (the default, NNG's
            /// `NNG_OPT_SUB_PREFNEW`) drops the oldest queued message for the new one.
            pub fn prefer_new(&self) -> bool {
                self.with_core(|core, _| core.prefer_new())
            }

            /// Sets what a full receive queue gives up while the socket runs (`false`: the new
            /// message); either way the loss is counted as `RecvQueueFull`.
            pub fn set_prefer_new(&self, prefer_new: bool) {
                self.with_core(|core, _| core.set_prefer_new(prefer_new));
            }
        })*
    };
}

prefer_new_setters!(Sub, XSub);

impl<R: Runtime> Socket<R, Surveyor> {
    /// Returns how long each survey collects responses (default 1 s).
    pub fn survey_time(&self) -> Duration {
        self.with_core(|core, _| core.survey_time())
    }

    /// Sets how long each survey from now on collects responses. Once a survey's time is up,
    /// `recv` fails with [`Error::TimedOut`] (then [`Error::BadState`] until the next survey).
    pub fn set_survey_time(&self, survey_time: Duration) {
        self.with_core(|core, _| core.set_survey_time(survey_time));
    }
}

impl<R: Runtime> Socket<R, Respondent> {
    /// Sets the maximum number of backtrace hops (1–255, default 8) a survey may carry.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] outside 1–255.
    pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
        self.with_core(|core, _| core.set_max_ttl(ttl))
            .map_err(|e| Error::config("max_ttl", e))
    }
}
