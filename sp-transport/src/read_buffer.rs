//! A stream pipe's read buffer: the bytes read and not yet decoded, then room for the next
//! read that stays zeroed from one read to the next.
//!
//! Why: a read needs initialized memory (`AsyncRead::poll_read` takes `&mut [u8]`, and this
//! crate has no `unsafe`). Growing a `BytesMut` by the read size before each read and
//! truncating it to what came zeroed the whole room every time: 32 KiB for a read that brought
//! a few KiB, as a tcp fan-out subscriber's reads do (BENCHMARKS.md, "A read's room is zeroed
//! once"). Here the room after the data is kept, with whatever bytes the last reads left in
//! it, and only room that was never part of the buffer is zeroed: about as many bytes as the
//! reads bring, not as many as they ask for.

use bytes::{Buf, BytesMut};

/// The bytes of `buf[..filled]` are data; `buf[filled..]` is room that holds stale bytes of
/// no meaning, already initialized, for the next read.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffer {
    buf: BytesMut,
    filled: usize,
}

impl From<BytesMut> for ReadBuffer {
    /// A buffer whose bytes are all data (what a handshake read past its end).
    fn from(buf: BytesMut) -> Self {
        let filled = buf.len();
        Self { buf, filled }
    }
}

impl ReadBuffer {
    /// The bytes read and not yet taken.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// How many bytes of data it holds.
    pub(crate) fn len(&self) -> usize {
        self.filled
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The memory it holds, data and room.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drops the first `n` bytes of data (at most [`len`](Self::len)).
    pub(crate) fn advance(&mut self, n: usize) {
        assert!(n <= self.filled, "advanced past the data");
        self.buf.advance(n);
        self.filled -= n;
    }

    /// Takes the first `n` bytes of data (at most [`len`](Self::len)) as a buffer of their
    /// own, sharing this one's memory.
    pub(crate) fn split_to(&mut self, n: usize) -> BytesMut {
        assert!(n <= self.filled, "split past the data");
        self.filled -= n;
        self.buf.split_to(n)
    }

    /// Drops all the data; the room stays.
    pub(crate) fn clear(&mut self) {
        self.advance(self.filled);
    }

    /// Appends `bytes` to the data, into the room when they fit there.
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        let end = self.filled + bytes.len();
        if end <= self.buf.len() {
            self.buf[self.filled..end].copy_from_slice(bytes);
        } else {
            self.buf.truncate(self.filled);
            self.buf.extend_from_slice(bytes);
        }
        self.filled = end;
    }

    /// The room for a read of about `want` bytes: what is kept if it holds at least half of
    /// `want`, else `want` bytes (the kept room is dropped and fresh room zeroed, after the
    /// data has moved to the front of the allocation when it is this buffer's alone). The
    /// read's bytes become data with [`commit`](Self::commit).
    ///
    /// Why half: a read into kept room zeroes nothing, and room is renewed once reads have
    /// used half of it, so every byte zeroed takes one to two bytes that came.
    pub(crate) fn room(&mut self, want: usize) -> &mut [u8] {
        // An empty room would read 0 bytes, which a pipe takes for the end of the stream.
        debug_assert!(want > 0, "a read asks for at least one byte");
        if self.buf.len() - self.filled < want.div_ceil(2).max(1) {
            self.buf.truncate(self.filled);
            self.buf.resize(self.filled + want, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Makes the first `n` bytes of the room (as [`room`](Self::room) gave it) data.
    pub(crate) fn commit(&mut self, n: usize) {
        assert!(self.filled + n <= self.buf.len(), "committed past the room");
        self.filled += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads of a few bytes into room of 64 zero it once; the data stays in order across
    /// takes, splits and a renewal of the room.
    #[test]
    fn room_is_kept_between_reads_and_renewed_when_half_used() {
        let mut rb = ReadBuffer::default();
        let room = rb.room(64);
        assert_eq!(room.len(), 64);
        room[..3].copy_from_slice(b"abc");
        rb.commit(3);
        assert_eq!(rb.room(64).len(), 61, "kept room is offered whole");
        rb.room(64)[..2].copy_from_slice(b"de");
        rb.commit(2);
        assert_eq!(rb.data(), b"abcde");
        rb.advance(2);
        assert_eq!(&rb.split_to(1)[..], b"c");
        assert_eq!(rb.data(), b"de");
        // 59 bytes of room are left: still more than half of 64, so nothing moves.
        assert_eq!(rb.room(64).len(), 59);
        rb.commit(40);
        assert_eq!(rb.len(), 42);
        rb.advance(42);
        assert!(rb.is_empty());
        // 19 left, less than half of 64: fresh room of 64.
        assert_eq!(rb.room(64).len(), 64);
        assert!(rb.capacity() >= 64);
    }

    #[test]
    fn appended_bytes_go_into_the_room_or_grow_the_buffer() {
        let mut rb = ReadBuffer::from(BytesMut::from(&b"xy"[..]));
        assert_eq!(rb.data(), b"xy");
        rb.extend_from_slice(b"z");
        assert_eq!(rb.data(), b"xyz");
        rb.room(8);
        rb.extend_from_slice(b"0123");
        assert_eq!(rb.data(), b"xyz0123");
        rb.extend_from_slice(&[7; 20]);
        assert_eq!(rb.len(), 27);
        assert_eq!(&rb.data()[..7], b"xyz0123");
        rb.clear();
        assert!(rb.is_empty());
        assert!(rb.data().is_empty());
    }
}
