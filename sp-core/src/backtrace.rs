//! REQ/REP and SURVEYOR/RESPONDENT header stacks ("backtraces"): request IDs, parsing and hops.
//!
//! A request carries a stack of 32-bit big-endian words in front of its body (SP-PROTOCOLS.md
//! section 4.4.1, `rfc/sp-request-reply-01` in nanomsg/nanomsg):
//!
//! ```text
//!  most recently added (outermost hop)                 innermost
//! +-+-------------+-+-------------+     +-+-------------+-------------+
//! |0| pipe id #k  |0| pipe id #k-1| ... |1| request id  |  body ...   |
//! +-+-------------+-+-------------+     +-+-------------+-------------+
//!  ^ bit 31 = 0: a hop's pipe ID         ^ bit 31 = 1: bottom of stack
//! ```
//!
//! [`split_backtrace`] moves that stack from the front of a received body into a header without
//! copying. [`push_pipe_word`] and [`pop_pipe_word`] add and remove the hop words that raw
//! REP-side sockets use for routing. [`RequestId`] and [`RequestIdSequence`] make the bottom word.

use bytes::{Buf, Bytes, BytesMut};

use crate::rng::SplitMix64;
use crate::PipeId;

/// The default maximum number of backtrace words (hops plus the request ID) a REP-side socket
/// accepts. The same in NNG, mangos and nanomsg.
pub const DEFAULT_MAX_TTL: u8 = 8;

/// Bit 31 of a backtrace word: set only on the bottom word, which holds the request ID.
pub const BOTTOM_OF_STACK_BIT: u32 = 0x8000_0000;

/// The size of one backtrace word on the wire.
pub const WORD_LEN: usize = 4;

/// A request or survey ID: 32 bits with bit 31 set (`0x8000_0000..=0xFFFF_FFFF`).
///
/// The top bit marks the bottom of a backtrace stack, so a value without it cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u32);

impl RequestId {
    /// Returns the ID for `v`, or `None` when bit 31 is clear.
    pub const fn new(v: u32) -> Option<Self> {
        if v & BOTTOM_OF_STACK_BIT != 0 {
            Some(Self(v))
        } else {
            None
        }
    }

    /// Returns the whole 32-bit value, bit 31 included.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Returns the ID as it appears on the wire (big-endian).
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

/// A seeded sequence of consecutive request IDs from a random start, with bit 31 always set.
///
/// Like nanomsg and mangos, the sequence only wraps within `0x8000_0000..=0xFFFF_FFFF` and skips
/// nothing else; with one outstanding request per socket an ID is reused only after 2^31 sends.
#[derive(Clone, Debug)]
pub struct RequestIdSequence {
    next: u32,
}

impl RequestIdSequence {
    /// Creates a sequence whose first ID is derived from `seed`.
    pub fn new(seed: u64) -> Self {
        let start = SplitMix64::new(seed).next_u64() as u32;
        Self {
            next: start | BOTTOM_OF_STACK_BIT,
        }
    }

    /// Returns the next ID: the previous one plus 1, wrapping from `0xFFFF_FFFF` to
    /// `0x8000_0000`.
    pub fn next_id(&mut self) -> RequestId {
        let id = RequestId(self.next);
        self.next = self.next.wrapping_add(1) | BOTTOM_OF_STACK_BIT;
        id
    }
}

/// Why [`split_backtrace`] refused a body.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BacktraceError {
    /// The body ended before a word with bit 31 set. NNG kicks the pipe for this.
    #[error("backtrace has no bottom word (bit 31 set) before the body ends")]
    NoBottom,
    /// The stack would hold more than `max_ttl` words. Devices can produce this legitimately,
    /// so receivers drop the message and keep the pipe.
    #[error("backtrace reaches {hops} words, more than the maximum of {max_ttl}")]
    TooManyHops {
        /// The word count at which parsing stopped (`max_ttl + 1`).
        hops: usize,
        /// The limit that was exceeded.
        max_ttl: u8,
    },
}

/// Moves the backtrace from the front of `body` into the returned header, without copying.
///
/// The backtrace is every 4-byte big-endian word up to and including the first one with bit 31
/// set. A stack of up to `max_ttl` words (request ID included) is accepted, as in NNG, mangos
/// and nanomsg. Parsing stops at word `max_ttl + 1`, so a huge body is never scanned further.
///
/// # Errors
/// [`BacktraceError::TooManyHops`] when no bottom word is found within `max_ttl` words, and
/// [`BacktraceError::NoBottom`] when the body ends first. On error `body` is left unchanged.
pub fn split_backtrace(body: &mut Bytes, max_ttl: u8) -> Result<Bytes, BacktraceError> {
    let mut words = 0usize;
    loop {
        // The TTL check comes before the length check, as in NNG: an over-long stack is
        // dropped, not treated as garbage, even when the body also ends early.
        if words >= usize::from(max_ttl) {
            return Err(BacktraceError::TooManyHops {
                hops: words + 1,
                max_ttl,
            });
        }
        let start = words * WORD_LEN;
        let Some(word) = body.get(start..).and_then(read_word) else {
            return Err(BacktraceError::NoBottom);
        };
        words += 1;
        if word & BOTTOM_OF_STACK_BIT != 0 {
            return Ok(body.split_to(words * WORD_LEN));
        }
    }
}

/// Prepends `pipe` as a hop word to `header` (what a REP-side device hop does to a request).
///
/// This copies the header, which is at most a few words long.
pub fn push_pipe_word(header: &mut Bytes, pipe: PipeId) {
    let mut out = BytesMut::with_capacity(WORD_LEN + header.len());
    out.extend_from_slice(&pipe.get().to_be_bytes());
    out.extend_from_slice(header);
    *header = out.freeze();
}

/// Removes the first word of `header` and returns it (how a reply picks its next pipe).
///
/// Returns `None` and leaves `header` alone when it holds fewer than 4 bytes. The word is
/// returned as is: when bit 31 is set it is a request ID, not a pipe, and
/// [`PipeId::new`] rejects it.
pub fn pop_pipe_word(header: &mut Bytes) -> Option<u32> {
    if header.len() < WORD_LEN {
        return None;
    }
    Some(header.get_u32())
}

/// Reads the big-endian word at the front of `bytes`, if there are at least 4 bytes.
pub(crate) fn read_word(bytes: &[u8]) -> Option<u32> {
    let word: [u8; 4] = bytes.get(..WORD_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Bytes {
        ws.iter()
            .flat_map(|w| w.to_be_bytes())
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn request_id_requires_top_bit() {
        assert!(RequestId::new(0x7fff_ffff).is_none());
        assert_eq!(
            RequestId::new(0x8000_0337).unwrap().to_bytes(),
            [0x80, 0, 3, 0x37]
        );
    }

    #[test]
    fn id_sequence_is_seeded_consecutive_and_wraps_in_top_half() {
        let mut a = RequestIdSequence::new(9);
        let mut b = RequestIdSequence::new(9);
        let first = a.next_id();
        assert_eq!(first, b.next_id());
        assert_eq!(
            a.next_id().get(),
            first.get().wrapping_add(1) | BOTTOM_OF_STACK_BIT
        );
        let mut w = RequestIdSequence { next: 0xffff_ffff };
        assert_eq!(w.next_id().get(), 0xffff_ffff);
        assert_eq!(w.next_id().get(), 0x8000_0000);
    }

    #[test]
    fn split_moves_stack_into_header() {
        let mut body = words(&[0x1be, 0x12b, 0x8000_0337]);
        let mut full = body.to_vec();
        full.extend_from_slice(b"Hello");
        body = full.into();
        let header = split_backtrace(&mut body, DEFAULT_MAX_TTL).unwrap();
        assert_eq!(header, words(&[0x1be, 0x12b, 0x8000_0337]));
        assert_eq!(&body[..], b"Hello");
    }

    #[test]
    fn split_ttl_counts_the_request_id() {
        // NNG test_xrep_ttl_drop with ttl 3: 2 and 3 words pass, 4 words are dropped.
        for (n, ok) in [(2usize, true), (3, true), (4, false)] {
            let mut ws = vec![1u32; n - 1];
            ws.push(0x8000_0001);
            let mut body = words(&ws);
            let res = split_backtrace(&mut body, 3);
            assert_eq!(res.is_ok(), ok, "{n} words");
            if !ok {
                assert_eq!(
                    res,
                    Err(BacktraceError::TooManyHops {
                        hops: 4,
                        max_ttl: 3
                    })
                );
            }
        }
    }

    #[test]
    fn split_without_bottom_is_garbage_and_leaves_body() {
        let mut body = Bytes::from_static(b"\x00\x00\x00\x01abc");
        assert_eq!(split_backtrace(&mut body, 8), Err(BacktraceError::NoBottom));
        assert_eq!(body.len(), 7);
        let mut empty = Bytes::new();
        assert_eq!(
            split_backtrace(&mut empty, 8),
            Err(BacktraceError::NoBottom)
        );
    }

    #[test]
    fn split_with_zero_ttl_drops_everything() {
        let mut body = words(&[0x8000_0001]);
        assert_eq!(
            split_backtrace(&mut body, 0),
            Err(BacktraceError::TooManyHops {
                hops: 1,
                max_ttl: 0
            })
        );
    }

    #[test]
    fn push_then_pop_round_trips() {
        let mut header = words(&[0x8000_0001]);
        push_pipe_word(&mut header, PipeId::new(0x12b).unwrap());
        push_pipe_word(&mut header, PipeId::new(0x1be).unwrap());
        assert_eq!(header, words(&[0x1be, 0x12b, 0x8000_0001]));
        assert_eq!(pop_pipe_word(&mut header), Some(0x1be));
        assert_eq!(pop_pipe_word(&mut header), Some(0x12b));
        assert_eq!(pop_pipe_word(&mut header), Some(0x8000_0001));
        assert_eq!(pop_pipe_word(&mut header), None);
        let mut short = Bytes::from_static(b"\x00\x01");
        assert_eq!(pop_pipe_word(&mut short), None);
        assert_eq!(short.len(), 2);
    }
}
