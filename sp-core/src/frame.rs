//! Stream framing for the byte-stream transports: TCP and TLS (spec 2.2) and IPC (spec 2.3).
//!
//! After the 8-byte connection header (see [`crate::handshake`]), every message travels as a
//! length prefix followed by `L` payload bytes, where the payload is the SP header followed by
//! the body with nothing in between:
//!
//! ```text
//! TCP / TLS:  +---------------------+--------------------+
//!             | L: u64 big-endian   | header + body (L)  |
//!             +---------------------+--------------------+
//! IPC:        +------+---------------------+--------------------+
//!             | 0x01 | L: u64 big-endian   | header + body (L)  |
//!             +------+---------------------+--------------------+
//! ```
//!
//! [`FrameDecoder`] takes frames off the front of a caller-owned [`BytesMut`] without copying
//! the payload, and refuses an oversized length claim as soon as the prefix is complete, before
//! any payload byte arrives and before anything is allocated for it. [`encode_prefix`] and
//! [`encode`] produce the sending side.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Message;

/// The largest message a [`FrameDecoder`] accepts unless told otherwise: 1 MiB, the nanomsg and
/// mangos default (spec 9.8).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 20;

/// The smallest length claim that is always refused, whatever the configured limit.
///
/// The top 4 bits of the 64-bit length are reserved (NNG refuses any `L >= 2^60`, spec 2.2), so
/// a claim at or above this value is reported as [`FrameError::ReservedLengthBits`] even when the
/// limit is 0 (unlimited).
pub const MAX_LENGTH_CLAIM: u64 = 1 << 60;

/// The IPC message type for an in-band payload, the only one defined (spec 2.3).
const IPC_TYPE_INBAND: u8 = 0x01;

/// Which stream framing a pipe uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// TCP and TLS: an 8-byte big-endian length, then the payload.
    Tcp,
    /// IPC: the type byte `0x01`, an 8-byte big-endian length, then the payload.
    Ipc,
}

impl FrameKind {
    /// Returns the length of the prefix in front of every payload: 8 for TCP, 9 for IPC.
    pub const fn prefix_len(self) -> usize {
        match self {
            Self::Tcp => 8,
            Self::Ipc => 9,
        }
    }
}

/// Takes whole frames off the front of a receive buffer and enforces the receive size limit.
///
/// The decoder keeps no bytes of its own: the caller reads from its stream into a [`BytesMut`]
/// and calls [`decode`](Self::decode) until it returns `Ok(None)`. Each payload comes back as a
/// [`Bytes`] split off that buffer, so it is never copied.
///
/// ```
/// use bytes::BytesMut;
/// use sp_core::frame::{FrameDecoder, FrameKind};
///
/// let mut decoder = FrameDecoder::new(FrameKind::Tcp, 100);
/// let mut buf = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 2, b'h'][..]);
/// assert_eq!(decoder.decode(&mut buf), Ok(None)); // one payload byte still missing
/// assert_eq!(decoder.bytes_wanted(&buf), 1);
/// buf.extend_from_slice(b"i");
/// assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), &b"hi"[..]);
/// assert!(buf.is_empty());
/// ```
///
/// After an error the stream cannot be resynchronised: the caller closes the pipe (spec 2.2
/// says the receiver closes the connection on an oversized frame).
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    kind: FrameKind,
    max_message_size: usize,
}

impl FrameDecoder {
    /// Creates a decoder for `kind` framing that refuses payloads above `max_message_size`
    /// bytes; 0 means unlimited (claims of [`MAX_LENGTH_CLAIM`] or more are still refused).
    pub fn new(kind: FrameKind, max_message_size: usize) -> Self {
        Self {
            kind,
            max_message_size,
        }
    }

    /// Returns the framing this decoder reads.
    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    /// Returns the receive limit in bytes; 0 means unlimited.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Changes the receive limit; it applies from the next frame whose prefix is examined.
    pub fn set_max_message_size(&mut self, max: usize) {
        self.max_message_size = max;
    }

    /// Takes one whole frame off the front of `buf` and returns its payload.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame; `buf` is then left
    /// untouched and [`bytes_wanted`](Self::bytes_wanted) says how much is missing. On success
    /// exactly the prefix and the payload are removed from `buf`; the payload shares its memory.
    ///
    /// # Errors
    ///
    /// Returns a [`FrameError`] as soon as the prefix shows a frame that must be refused: a
    /// length above the limit, a length with reserved bits set, or (IPC) a type byte other than
    /// `0x01`. The error comes before the payload arrives, `buf` is left untouched and nothing is
    /// allocated. The caller should close the pipe.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let len = match self.parse_prefix(buf)? {
            Some(len) => len,
            None => return Ok(None),
        };
        let prefix_len = self.kind.prefix_len();
        if buf.len() - prefix_len < len {
            return Ok(None);
        }
        buf.advance(prefix_len);
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// Returns the payload length of the frame at the front of `buf` once its prefix is
    /// complete, `None` while it is not.
    ///
    /// # Errors
    /// As [`decode`](Self::decode): a prefix that must be refused.
    #[inline]
    pub fn payload_len(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        self.parse_prefix(buf)
    }

    /// Returns how many more bytes the frame at the front of `buf` needs to be complete.
    ///
    /// The answer is at least 1 whenever [`decode`](Self::decode) would return `Ok(None)`, and 0
    /// when a whole frame is already present or when the prefix is invalid (`decode` then
    /// returns the error). While the prefix is incomplete it counts only the missing prefix
    /// bytes. It never exceeds the limit plus the prefix length, so a caller may use it to size a
    /// read; with an unlimited decoder the caller should still cap its reservation.
    pub fn bytes_wanted(&self, buf: &[u8]) -> usize {
        let prefix_len = self.kind.prefix_len();
        match self.parse_prefix(buf) {
            Ok(Some(len)) => (prefix_len + len).saturating_sub(buf.len()),
            Ok(None) => prefix_len - buf.len(),
            Err(_) => 0,
        }
    }

    /// Parses and checks the prefix at the front of `buf`.
    ///
    /// Returns the payload length once the prefix is complete and acceptable, `None` while it is
    /// incomplete. A bad IPC type byte is reported as soon as that first byte is present. When
    /// this returns `Some(len)`, `prefix_len + len` fits in a `usize`.
    #[inline]
    fn parse_prefix(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let len_at = match self.kind {
            FrameKind::Tcp => 0,
            FrameKind::Ipc => {
                match buf.first() {
                    None => return Ok(None),
                    Some(&IPC_TYPE_INBAND) => {}
                    Some(&byte) => return Err(FrameError::BadIpcType { byte }),
                }
                1
            }
        };
        let Some(len_bytes) = buf.get(len_at..len_at + 8) else {
            return Ok(None);
        };
        let mut raw = [0u8; 8];
        raw.copy_from_slice(len_bytes);
        let len = u64::from_be_bytes(raw);
        if len >= MAX_LENGTH_CLAIM {
            return Err(FrameError::ReservedLengthBits { len });
        }
        let max = self.max_message_size;
        if max != 0 && len > max as u64 {
            return Err(FrameError::TooLarge { len, max });
        }
        // Only reachable on targets where usize is narrower than 61 bits and the limit is 0.
        let len = usize::try_from(len)
            .ok()
            .filter(|len| len.checked_add(self.kind.prefix_len()).is_some())
            .ok_or(FrameError::TooLarge {
                len,
                max: usize::MAX,
            })?;
        Ok(Some(len))
    }
}

/// Why a frame prefix was refused. Every variant means the stream is unusable: close the pipe.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix claims more bytes than the receive limit allows.
    #[error(
        "frame of {len} bytes exceeds the receive limit of {max} bytes; raise the max message \
         size if such messages are expected"
    )]
    TooLarge {
        /// The claimed payload length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The length prefix has one of its top 4 (reserved) bits set: a claim of 2^60 bytes or more.
    #[error(
        "frame length {len:#x} has reserved top bits set (lengths must stay below 2^60); the \
         peer is not speaking sp framing or the stream is corrupt"
    )]
    ReservedLengthBits {
        /// The claimed payload length.
        len: u64,
    },
    /// An IPC frame started with a message type other than `0x01`.
    #[error(
        "ipc frame has message type {byte:#04x} but only 0x01 is defined; the peer is not \
         speaking sp over ipc or the stream is corrupt"
    )]
    BadIpcType {
        /// The type byte received.
        byte: u8,
    },
}

/// The bytes that go in front of a payload on the wire: 8 for TCP, 9 for IPC.
///
/// Kept on the stack so a writer can send it as its own slice in a vectored write, followed by
/// the message's header and body without copying them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FramePrefix {
    bytes: [u8; 9],
    len: u8,
}

impl FramePrefix {
    /// Returns the prefix bytes to write before the payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for FramePrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FramePrefix({:02x?})", self.as_bytes())
    }
}

impl AsRef<[u8]> for FramePrefix {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Returns the prefix announcing a payload of `payload_len` bytes (SP header plus body).
pub fn encode_prefix(kind: FrameKind, payload_len: usize) -> FramePrefix {
    let mut bytes = [0u8; 9];
    let len = (payload_len as u64).to_be_bytes();
    match kind {
        FrameKind::Tcp => bytes[..8].copy_from_slice(&len),
        FrameKind::Ipc => {
            bytes[0] = IPC_TYPE_INBAND;
            bytes[1..].copy_from_slice(&len);
        }
    }
    // prefix_len is 8 or 9, so it fits in a u8.
    FramePrefix {
        bytes,
        len: kind.prefix_len() as u8,
    }
}

/// Appends the prefix, `msg.header` and `msg.body` to `out` as one contiguous frame.
///
/// This copies the message; it suits small messages. Large ones are better written as the
/// [`encode_prefix`] bytes followed by the header and body slices in a vectored write.
pub fn encode(kind: FrameKind, msg: &Message, out: &mut BytesMut) {
    let len = msg.len();
    out.reserve(kind.prefix_len() + len);
    // The length as one 8-byte store, not a copy of a prefix built on the stack: a small
    // message is framed once per send, and each copy was a `memcpy` call.
    if kind == FrameKind::Ipc {
        out.put_u8(IPC_TYPE_INBAND);
    }
    out.put_u64(len as u64);
    out.extend_from_slice(&msg.header);
    out.extend_from_slice(&msg.body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_frame(len: u64, payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(payload);
        buf
    }

    #[test]
    fn spec_example_req_hi_encodes_as_documented() {
        let msg = Message::with_header(&[0x80, 0, 0, 1][..], &b"hi"[..]);
        let mut out = BytesMut::new();
        encode(FrameKind::Tcp, &msg, &mut out);
        assert_eq!(
            &out[..],
            &[0, 0, 0, 0, 0, 0, 0, 6, 0x80, 0, 0, 1, b'h', b'i']
        );
    }

    #[test]
    fn ipc_prefix_starts_with_inband_type() {
        let prefix = encode_prefix(FrameKind::Ipc, 0x0102);
        assert_eq!(prefix.as_bytes(), &[1, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(encode_prefix(FrameKind::Tcp, 0).as_bytes(), &[0; 8]);
    }

    #[test]
    fn zero_length_frame_is_an_empty_message() {
        let mut dec = FrameDecoder::new(FrameKind::Tcp, DEFAULT_MAX_MESSAGE_SIZE);
        let mut buf = tcp_frame(0, b"rest");
        assert_eq!(dec.decode(&mut buf), Ok(Some(Bytes::new())));
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn incomplete_prefix_and_payload_wait_for_more() {
        let mut dec = FrameDecoder::new(FrameKind::Ipc, 100);
        let mut buf = BytesMut::new();
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(dec.bytes_wanted(&buf), 9);
        buf.extend_from_slice(&[1, 0, 0, 0]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(dec.bytes_wanted(&buf), 5);
        buf.extend_from_slice(&[0, 0, 0, 0, 10, 1, 2]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 11);
        assert_eq!(dec.bytes_wanted(&buf), 8);
        buf.extend_from_slice(&[3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(dec.bytes_wanted(&buf), 0);
        assert_eq!(
            dec.decode(&mut buf).unwrap().unwrap(),
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10][..]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn limit_is_checked_on_the_prefix_alone() {
        // NNG's test_tcp_recv_max: limit 100, 95 bytes pass, 150 bytes are refused.
        let mut dec = FrameDecoder::new(FrameKind::Tcp, 100);
        let mut ok = tcp_frame(95, &[7; 95]);
        assert_eq!(dec.decode(&mut ok).unwrap().unwrap().len(), 95);
        let mut big = tcp_frame(150, &[]);
        assert_eq!(
            dec.decode(&mut big),
            Err(FrameError::TooLarge { len: 150, max: 100 })
        );
        assert_eq!(big.len(), 8, "an error leaves the buffer untouched");
        assert_eq!(dec.bytes_wanted(&big), 0);
        let mut exact = tcp_frame(100, &[0; 100]);
        assert!(dec.decode(&mut exact).unwrap().is_some());
    }

    #[test]
    fn reserved_length_bits_are_refused_even_when_unlimited() {
        let mut dec = FrameDecoder::new(FrameKind::Tcp, 0);
        let mut buf = BytesMut::from(&[0x10, 0, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::ReservedLengthBits { len: 1 << 60 })
        );
        let mut below = tcp_frame(MAX_LENGTH_CLAIM - 1, &[]);
        assert_eq!(dec.decode(&mut below), Ok(None));
        let mut top = BytesMut::from(&[0x80, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(matches!(
            dec.decode(&mut top),
            Err(FrameError::ReservedLengthBits { .. })
        ));
    }

    #[test]
    fn bad_ipc_type_is_refused_on_the_first_byte() {
        let mut dec = FrameDecoder::new(FrameKind::Ipc, 100);
        let mut buf = BytesMut::from(&[0x02][..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::BadIpcType { byte: 2 })
        );
        assert_eq!(buf.len(), 1);
    }

    #[test]
    fn payload_is_split_off_without_copying() {
        let mut dec = FrameDecoder::new(FrameKind::Tcp, 100);
        let mut buf = tcp_frame(3, b"abcdef");
        let base = buf.as_ptr() as usize;
        let payload = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(payload.as_ptr() as usize, base + 8);
        assert_eq!(&buf[..], b"def");
    }

    #[test]
    fn set_max_message_size_applies_to_the_next_frame() {
        let mut dec = FrameDecoder::new(FrameKind::Tcp, 4);
        assert_eq!(dec.max_message_size(), 4);
        let mut buf = tcp_frame(5, b"12345");
        assert!(dec.decode(&mut buf).is_err());
        dec.set_max_message_size(0);
        assert_eq!(dec.decode(&mut buf).unwrap().unwrap(), &b"12345"[..]);
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let msg = FrameError::TooLarge { len: 150, max: 100 }.to_string();
        assert_eq!(
            msg,
            "frame of 150 bytes exceeds the receive limit of 100 bytes; raise the max message \
             size if such messages are expected"
        );
        assert!(FrameError::BadIpcType { byte: 2 }
            .to_string()
            .contains("0x02"));
    }
}
