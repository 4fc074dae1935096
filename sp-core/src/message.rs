//! [`Message`]: an SP header plus an application body, both reference-counted [`Bytes`].

use bytes::{Bytes, BytesMut};

use crate::PipeId;

/// One SP message: protocol control words (`header`) followed by the application payload (`body`).
///
/// On the wire the header bytes come first and the body bytes follow with nothing in between.
/// Both halves are [`Bytes`], so moving a message between the application, the protocol core and
/// a pipe's write queue never copies the body.
///
/// A message that arrives from a stream pipe has an empty header, and one from an inproc pipe
/// the sending protocol's header: either way the receiving protocol parses its own control
/// words from the front of header-then-body and moves them into the header (see `header`
/// parsing in each protocol), which keeps the decoding rules in one place for every transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Protocol control words (backtrace, request ID, hop count). Empty for cooked bodies.
    pub header: Bytes,
    /// The application payload.
    pub body: Bytes,
    /// The pipe a message came from or should go to (NNG's `nng_msg_get_pipe` /
    /// `nng_msg_set_pipe`).
    ///
    /// On receive, every role, cooked and raw, sets it to the pipe the message arrived on, so
    /// that the application can tell its peers apart (for example to close one, or to look up
    /// its address in the driver). On send, only polyamorous PAIR v1 reads it, to pick the
    /// peer; every other role ignores it and routes by its own rules (a raw REP's header, for
    /// one), and the message goes out with `None`. Messages built with [`Message::new`] and
    /// [`Message::with_header`] start with `None`; since equality compares this field too, a
    /// received message equals `Message::new(body)` only after [`Message::with_pipe`] names
    /// the same pipe, or compare header and body alone.
    pub pipe: Option<PipeId>,
}

impl Message {
    /// Creates a message with an empty header.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            header: Bytes::new(),
            body: body.into(),
            pipe: None,
        }
    }

    /// Creates a message with the given header and body.
    pub fn with_header(header: impl Into<Bytes>, body: impl Into<Bytes>) -> Self {
        Self {
            header: header.into(),
            body: body.into(),
            pipe: None,
        }
    }

    /// Returns the message addressed to `pipe` (`None`: no particular pipe).
    pub fn with_pipe(mut self, pipe: impl Into<Option<PipeId>>) -> Self {
        self.pipe = pipe.into();
        self
    }

    /// Returns the number of bytes this message occupies on the wire, header included.
    #[inline]
    pub fn len(&self) -> usize {
        self.header.len() + self.body.len()
    }

    /// Returns true when both header and body are empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.header.is_empty() && self.body.is_empty()
    }

    /// Returns header and body joined into one buffer, consuming the message.
    ///
    /// With an empty header (every message a stream pipe delivers) the body moves out as it
    /// is: no copy and, unlike [`to_contiguous`](Self::to_contiguous), no reference-count update,
    /// which on the receive path is an atomic on memory the application's thread also touches.
    #[inline]
    pub fn into_contiguous(self) -> Bytes {
        if self.header.is_empty() {
            return self.body;
        }
        self.to_contiguous()
    }

    /// Returns header and body joined into one buffer (copies unless the header is empty:
    /// tests, raw views, and a core that cannot read an inproc peer's header in place).
    pub fn to_contiguous(&self) -> Bytes {
        if self.header.is_empty() {
            return self.body.clone();
        }
        let mut out = BytesMut::with_capacity(self.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.body);
        out.freeze()
    }
}

impl From<Bytes> for Message {
    #[inline]
    fn from(body: Bytes) -> Self {
        Self::new(body)
    }
}

impl From<Vec<u8>> for Message {
    fn from(body: Vec<u8>) -> Self {
        Self::new(body)
    }
}

impl From<&'static [u8]> for Message {
    fn from(body: &'static [u8]) -> Self {
        Self::new(Bytes::from_static(body))
    }
}

impl<const N: usize> From<&'static [u8; N]> for Message {
    fn from(body: &'static [u8; N]) -> Self {
        Self::new(Bytes::from_static(body))
    }
}

impl From<Box<[u8]>> for Message {
    fn from(body: Box<[u8]>) -> Self {
        Self::new(Bytes::from(body))
    }
}

impl From<std::borrow::Cow<'static, [u8]>> for Message {
    fn from(body: std::borrow::Cow<'static, [u8]>) -> Self {
        match body {
            std::borrow::Cow::Borrowed(b) => Self::new(Bytes::from_static(b)),
            std::borrow::Cow::Owned(v) => Self::new(v),
        }
    }
}

impl From<std::borrow::Cow<'static, str>> for Message {
    fn from(body: std::borrow::Cow<'static, str>) -> Self {
        match body {
            std::borrow::Cow::Borrowed(s) => Self::new(Bytes::from_static(s.as_bytes())),
            std::borrow::Cow::Owned(s) => Self::new(s.into_bytes()),
        }
    }
}

impl From<String> for Message {
    fn from(body: String) -> Self {
        Self::new(body.into_bytes())
    }
}

impl From<bytes::BytesMut> for Message {
    fn from(body: bytes::BytesMut) -> Self {
        Self::new(body.freeze())
    }
}

impl From<&'static str> for Message {
    fn from(body: &'static str) -> Self {
        Self::new(Bytes::from_static(body.as_bytes()))
    }
}
