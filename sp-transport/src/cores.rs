//! How the driver creates each protocol core, and the protocol-specific socket settings.

use std::time::Duration;

use sp_core::protocol::pair::{Pair, PairConfig};
use sp_core::protocol::pair1::{Pair1, Pair1Config};
use sp_core::protocol::pipeline::{Pull, PullConfig, Push, PushConfig};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};

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
}

impl<R: Runtime> Socket<R, Rep> {
    /// Sets the maximum number of backtrace hops (1–255, default 8) a request may carry.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] outside 1–255.
    pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
        self.with_core(|core, _| core.set_max_ttl(ttl))
            .map_err(|e| Error::InvalidOption(e.to_string()))
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
            .map_err(|e| Error::InvalidOption(e.to_string()))
    }
}
