//! Buffers for large received frames, reused from one message to the next.
//!
//! A large frame is read into a buffer of its own, which the application gets as the
//! message's `Bytes`. When the application drops the message, the buffer comes back here
//! instead of going back to the allocator. Without this, glibc's allocator returns the memory
//! of each freed large message to the kernel (its trim threshold is 128 KiB) and the next
//! frame faults it back in: on a thread with no memory arena of its own (a blocking call's
//! caller), page faults took most of the time of receiving 64 KiB messages (BENCHMARKS.md,
//! "64 KiB messages").
//!
//! The pool is process-wide, since a message may be dropped on any thread, and bounded: at most
//! [`POOL_BYTES`] of buffers, none larger than [`BUFFER_MAX`]. What does not fit is freed.

use std::sync::Mutex;

use bytes::Bytes;

/// Frames whose payload is at least this large are read into a pooled buffer.
pub(crate) const POOLED_MIN: usize = 32 * 1024;
/// Buffers larger than this are freed, not kept.
const BUFFER_MAX: usize = 1 << 20;
/// The most memory the pool keeps, in buffer capacity.
const POOL_BYTES: usize = 4 << 20;

/// Kept buffers, with their total capacity. A kept buffer keeps its length: those bytes are
/// written memory (an earlier message's), which the next frame's reads overwrite without
/// zeroing them first.
struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    const fn new() -> Self {
        Self {
            free: Vec::new(),
            bytes: 0,
        }
    }

    fn take(&mut self, len: usize) -> Option<Vec<u8>> {
        let at = self.free.iter().position(|b| b.capacity() >= len)?;
        let buf = self.free.swap_remove(at);
        self.bytes -= buf.capacity();
        Some(buf)
    }

    /// Keeps `buf` if it is small enough and there is room; frees it otherwise.
    fn put(&mut self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap <= BUFFER_MAX && self.bytes + cap <= POOL_BYTES {
            self.bytes += cap;
            self.free.push(buf);
        }
    }
}

static POOL: Mutex<Pool> = Mutex::new(Pool::new());

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a kept buffer that can hold `len` bytes without growing, if there is one. Its
/// capacity is memory already allocated, so using it follows no claim of a peer. Its bytes
/// (up to its length) are an earlier message's: the caller overwrites them, and never hands
/// out what it did not overwrite.
pub(crate) fn take(len: usize) -> Option<Vec<u8>> {
    pool().take(len)
}

/// Turns a whole frame's buffer into the message's bytes; the buffer returns to the pool when
/// the last reference to them is dropped.
pub(crate) fn into_bytes(buf: Vec<u8>) -> Bytes {
    Bytes::from_owner(Pooled(buf))
}

/// A frame buffer lent to a message.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        pool().put(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_buffer_serves_a_frame_that_fits() {
        let mut pool = Pool::new();
        let mut buf = vec![7u8; 100];
        buf.reserve_exact(0);
        let cap = buf.capacity();
        pool.put(buf);
        assert_eq!(pool.bytes, cap);
        assert!(pool.take(cap + 1).is_none(), "too small for this frame");
        let again = pool.take(cap).expect("kept");
        assert_eq!(again.capacity(), cap);
        assert_eq!(again, vec![7u8; 100], "its bytes stay, to be overwritten");
        assert_eq!(pool.bytes, 0);
    }

    #[test]
    fn the_pool_keeps_no_more_than_its_bounds() {
        let mut pool = Pool::new();
        pool.put(Vec::with_capacity(BUFFER_MAX + 1));
        assert!(pool.free.is_empty(), "too large to keep");
        for _ in 0..(POOL_BYTES / BUFFER_MAX) + 2 {
            pool.put(Vec::with_capacity(BUFFER_MAX));
        }
        assert!(pool.bytes <= POOL_BYTES);
        assert_eq!(pool.free.len(), POOL_BYTES / BUFFER_MAX);
    }

    #[test]
    fn a_message_reads_its_frame_and_slices_keep_it_alive() {
        let bytes = into_bytes(vec![1, 2, 3, 4]);
        let part = bytes.slice(1..3);
        drop(bytes);
        assert_eq!(&part[..], &[2, 3]);
    }
}
