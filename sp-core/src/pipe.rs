//! [`PipeId`]: the 31-bit identity of one established connection.

use std::fmt;

/// Identifies one pipe (an established, handshaken connection) within a socket.
///
/// Pipe IDs are 31-bit and never 0: REP-side sockets push them onto the backtrace, where bit 31
/// is reserved to mark the request ID at the bottom of the stack. Constructing one checks that.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PipeId(u32);

impl PipeId {
    /// The largest valid pipe ID.
    pub const MAX: u32 = 0x7fff_ffff;

    /// Returns the pipe ID for `value`, or `None` when it is 0 or has bit 31 set.
    pub const fn new(value: u32) -> Option<Self> {
        if value == 0 || value > Self::MAX {
            None
        } else {
            Some(Self(value))
        }
    }

    /// Returns the raw 31-bit value, as it appears in a backtrace word.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for PipeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pipe#{:x}", self.0)
    }
}

impl fmt::Display for PipeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// Hands out pipe IDs from a seeded random start, skipping 0 and wrapping within 31 bits.
///
/// NNG and mangos start from a random point so that IDs from a restarted process are unlikely to
/// match stale backtraces still in flight; the seed keeps that deterministic here.
#[derive(Clone, Debug)]
pub struct PipeIdAllocator {
    next: u32,
}

impl PipeIdAllocator {
    /// Creates an allocator whose first ID is derived from `seed`.
    pub fn new(seed: u64) -> Self {
        let start = (crate::rng::SplitMix64::new(seed).next_u64() as u32) & PipeId::MAX;
        Self { next: start.max(1) }
    }

    /// Returns the next pipe ID. IDs repeat only after 2^31 - 1 allocations.
    pub fn allocate(&mut self) -> PipeId {
        let id = self.next;
        self.next = if id >= PipeId::MAX { 1 } else { id + 1 };
        // `next` stays within 1..=MAX by construction above.
        PipeId::new(id).expect("allocator keeps ids within 1..=PipeId::MAX")
    }
}

impl Default for PipeIdAllocator {
    fn default() -> Self {
        Self::new(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_id_rejects_zero_and_top_bit() {
        assert!(PipeId::new(0).is_none());
        assert!(PipeId::new(0x8000_0000).is_none());
        assert_eq!(PipeId::new(5).unwrap().get(), 5);
    }

    #[test]
    fn allocator_wraps_past_max_without_zero() {
        let mut a = PipeIdAllocator { next: PipeId::MAX };
        assert_eq!(a.allocate().get(), PipeId::MAX);
        assert_eq!(a.allocate().get(), 1);
    }
}
