//! Reconnect back-off for dialers (spec 3, "Reconnect timing").
//!
//! A dialer waits [`Backoff::next_delay`] before each redial and calls [`Backoff::reset`] once a
//! pipe is up. The nominal delay `t` starts at the minimum and doubles after every attempt, up
//! to the maximum; each actual delay is drawn from `[t/2, t]`. The lower half-bound keeps a
//! minimum spacing between attempts, and the jitter keeps many dialers that lost the same
//! listener from redialling in lock-step. NNG draws from `[0, t)` and mangos grows `t` by a
//! random factor; both are compatible with this choice because none of it is visible on the
//! wire.
//!
//! The jitter comes from a seeded [`SplitMix64`], so a given seed always produces the same
//! sequence of delays.

use std::time::Duration;

use crate::rng::SplitMix64;

/// Default first reconnect delay: 100 ms (nanomsg's `NN_RECONNECT_IVL`, NNG's default).
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(100);

/// Default cap on the reconnect delay: 2 s.
///
/// Chosen by measurement (BENCHMARKS.md, "Reconnect back-off", from the simulated network
/// of `scripts/simulate.sh --backoff`): with a 2 s cap a dialer is back at most 1.7 s after
/// its listener returns (mean 0.8-0.9 s for outages of 5 s to 10 min) and makes 0.7 attempts a
/// second while the listener is away. NNG's default (100 ms, no growth) comes back within
/// 0.1 s but makes 12 attempts a second: 10,000 clients would knock 120,000 times a second on
/// a server that is trying to start (nng#1964). A 10 s cap costs a mean of 3.5-4.4 s and up to
/// 8.9 s of downtime after the listener is back to save 0.5 attempts a second.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(2);

/// Bounds of the reconnect delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The nominal delay before the first redial, and after every successful connection.
    /// Default: [`DEFAULT_RECONNECT_MIN`] (100 ms). Zero means redial at once.
    pub min: Duration,
    /// The cap on the nominal delay. [`Duration::ZERO`] turns back-off off, so every delay is
    /// drawn from `[min/2, min]` (nanomsg's `NN_RECONNECT_IVL_MAX` = 0). A value below `min`
    /// acts like `min`. Default: [`DEFAULT_RECONNECT_MAX`] (2 s).
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            min: DEFAULT_RECONNECT_MIN,
            max: DEFAULT_RECONNECT_MAX,
        }
    }
}

/// The delay sequence of one dialer.
///
/// ```
/// use std::time::Duration;
/// use sp_core::backoff::{Backoff, BackoffConfig};
///
/// let config = BackoffConfig { min: Duration::from_millis(100), max: Duration::from_secs(1) };
/// let mut backoff = Backoff::new(config, 7);
/// let first = backoff.next_delay();
/// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
/// let second = backoff.next_delay();
/// assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
/// backoff.reset(); // a pipe connected: start again from the minimum
/// assert!(backoff.next_delay() <= Duration::from_millis(100));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    /// The nominal delay `t` for the next attempt.
    current: Duration,
    rng: SplitMix64,
}

impl Backoff {
    /// Creates a back-off sequence whose jitter is drawn from a generator seeded with `seed`.
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        let current = config.min;
        Self {
            config,
            current,
            rng: SplitMix64::new(seed),
        }
    }

    /// Returns the delay to wait before the next connection attempt, and doubles the nominal
    /// delay for the attempt after it.
    ///
    /// The delay lies in `[t/2, t]`, where `t` is [`BackoffConfig::min`] on the first call and
    /// doubles on each call up to the cap ([`BackoffConfig::max`], or `min` when `max` is zero
    /// or below `min`).
    pub fn next_delay(&mut self) -> Duration {
        let t = self.current;
        self.current = t.saturating_mul(2).min(self.cap());
        jitter(&mut self.rng, t)
    }

    /// Starts the sequence again from the minimum; call it after a successful connection.
    pub fn reset(&mut self) {
        self.current = self.config.min;
    }

    /// Returns the configuration in force.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    fn cap(&self) -> Duration {
        if self.config.max.is_zero() {
            self.config.min
        } else {
            self.config.max.max(self.config.min)
        }
    }
}

/// Returns a duration drawn uniformly from `[t/2, t]` at nanosecond resolution.
fn jitter(rng: &mut SplitMix64, t: Duration) -> Duration {
    // Durations beyond u64 nanoseconds (about 584 years) are clamped; no dialer waits that long.
    let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
    let low = nanos - nanos / 2;
    let span = nanos / 2;
    let extra = match span.checked_add(1) {
        Some(bound) => rng.below(bound),
        None => rng.next_u64(),
    };
    Duration::from_nanos(low + extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn nominal_sequence(config: BackoffConfig, n: usize) -> Vec<(Duration, Duration)> {
        let mut backoff = Backoff::new(config, 1);
        (0..n)
            .map(|_| {
                let t = backoff.current;
                (t, backoff.next_delay())
            })
            .collect()
    }

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let config = BackoffConfig {
            min: 100 * MS,
            max: 1000 * MS,
        };
        let seq = nominal_sequence(config, 8);
        let nominal: Vec<_> = seq.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            nominal,
            [100, 200, 400, 800, 1000, 1000, 1000, 1000].map(|n| n * MS)
        );
        for (t, delay) in seq {
            assert!(
                delay >= t / 2 && delay <= t,
                "{delay:?} outside [{:?}, {t:?}]",
                t / 2
            );
        }
    }

    #[test]
    fn zero_max_means_no_back_off() {
        let config = BackoffConfig {
            min: 10 * MS,
            max: Duration::ZERO,
        };
        for (t, delay) in nominal_sequence(config, 20) {
            assert_eq!(t, 10 * MS);
            assert!(delay >= 5 * MS && delay <= 10 * MS);
        }
    }

    #[test]
    fn max_below_min_acts_like_min() {
        let config = BackoffConfig {
            min: 50 * MS,
            max: 10 * MS,
        };
        assert!(nominal_sequence(config, 5)
            .iter()
            .all(|(t, _)| *t == 50 * MS));
    }

    #[test]
    fn reset_starts_again_from_min() {
        let mut backoff = Backoff::new(BackoffConfig::default(), 3);
        for _ in 0..10 {
            backoff.next_delay();
        }
        assert_eq!(backoff.current, DEFAULT_RECONNECT_MAX);
        backoff.reset();
        assert!(backoff.next_delay() <= DEFAULT_RECONNECT_MIN);
    }

    #[test]
    fn same_seed_same_delays_and_seeds_differ() {
        let run = |seed| {
            let mut b = Backoff::new(BackoffConfig::default(), seed);
            (0..10).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn extreme_durations_do_not_panic() {
        let mut zero = Backoff::new(
            BackoffConfig {
                min: Duration::ZERO,
                max: MS,
            },
            0,
        );
        assert_eq!(zero.next_delay(), Duration::ZERO);
        let mut huge = Backoff::new(
            BackoffConfig {
                min: Duration::MAX,
                max: Duration::MAX,
            },
            0,
        );
        for _ in 0..3 {
            assert!(huge.next_delay() >= Duration::from_nanos(u64::MAX / 2));
        }
    }

    #[test]
    fn one_nanosecond_min_stays_in_range() {
        let mut b = Backoff::new(
            BackoffConfig {
                min: Duration::from_nanos(1),
                max: 4 * MS,
            },
            5,
        );
        let d = b.next_delay();
        assert!(d <= Duration::from_nanos(1));
    }
}
