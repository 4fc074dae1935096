//! The result lines NNG's perf tools print, as pure functions.

use std::time::Duration;

/// What a latency client measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyReport {
    /// Time for all round trips.
    pub total: Duration,
    /// Message size in bytes.
    pub msg_size: usize,
    /// Number of round trips.
    pub round_trips: u32,
}

impl LatencyReport {
    /// One-way latency in microseconds: round-trip time / 2, averaged.
    pub fn average_latency_us(&self) -> f64 {
        if self.round_trips == 0 {
            return 0.0;
        }
        self.total.as_secs_f64() * 1_000_000.0 / (f64::from(self.round_trips) * 2.0)
    }

    /// The four lines NNG's `remote_lat` prints.
    pub fn render(&self) -> String {
        format!(
            "total time: {:.3} [s]\nmessage size: {} [B]\nround trip count: {}\naverage latency: {:.3} [us]\n",
            self.total.as_secs_f64(),
            self.msg_size,
            self.round_trips,
            self.average_latency_us()
        )
    }
}

/// What a throughput server measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThroughputReport {
    /// Time from the start message to the last counted message.
    pub total: Duration,
    /// Message size in bytes.
    pub msg_size: usize,
    /// Number of counted messages.
    pub count: u32,
}

impl ThroughputReport {
    /// Messages per second.
    pub fn msgs_per_sec(&self) -> f64 {
        f64::from(self.count) / self.total.as_secs_f64()
    }

    /// Megabits per second, with NNG's 2^20-bit megabit.
    pub fn mbits_per_sec(&self) -> f64 {
        self.msgs_per_sec() * 8.0 * self.msg_size as f64 / (1024.0 * 1024.0)
    }

    /// The five lines NNG's `local_thr` prints.
    pub fn render(&self) -> String {
        format!(
            "total time: {:.3} [s]\nmessage size: {} [B]\nmessage count: {}\nthroughput: {:.0} [msg/s]\nthroughput: {:.3} [Mb/s]\n",
            self.total.as_secs_f64(),
            self.msg_size,
            self.count,
            self.msgs_per_sec(),
            self.mbits_per_sec()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lines() {
        let r = LatencyReport {
            total: Duration::from_millis(1500),
            msg_size: 64,
            round_trips: 10_000,
        };
        assert_eq!(
            r.render(),
            "total time: 1.500 [s]\nmessage size: 64 [B]\nround trip count: 10000\naverage latency: 75.000 [us]\n"
        );
    }

    #[test]
    fn throughput_lines() {
        let r = ThroughputReport {
            total: Duration::from_secs(2),
            msg_size: 1024,
            count: 100_000,
        };
        assert_eq!(
            r.render(),
            "total time: 2.000 [s]\nmessage size: 1024 [B]\nmessage count: 100000\nthroughput: 50000 [msg/s]\nthroughput: 390.625 [Mb/s]\n"
        );
    }

    #[test]
    fn zero_round_trips_do_not_divide_by_zero() {
        let r = LatencyReport {
            total: Duration::ZERO,
            msg_size: 1,
            round_trips: 0,
        };
        assert!(r.render().ends_with("average latency: 0.000 [us]\n"));
    }
}
