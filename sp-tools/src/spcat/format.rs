//! Output formats for received messages, byte for byte as nngcat writes them (spec 7.3).
//!
//! All encoders are pure: they append to a buffer and never touch stdout.

use std::fmt;

/// How spcat prints each received message body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `no`: print nothing (also the default when no format is given).
    No,
    /// `raw`: the body bytes exactly, no separator.
    Raw,
    /// `ascii`: printable bytes as themselves, others as `.`; no newline (nngcat quirk).
    Ascii,
    /// `quoted`: a C-style quoted string and a newline.
    Quoted,
    /// `msgpack`: a MessagePack bin header, then the body.
    Msgpack,
    /// `hex`: `"` + `\xNN` for every byte + `"` + newline.
    Hex,
}

impl Format {
    /// Every format, in the order `--format` documents them.
    pub const ALL: [Format; 6] = [
        Format::No,
        Format::Ascii,
        Format::Hex,
        Format::Msgpack,
        Format::Quoted,
        Format::Raw,
    ];

    /// Parses a `--format` value (`no`, `raw`, `ascii`, `quoted`, `msgpack`, `hex`).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The `--format` value naming this format.
    pub fn name(self) -> &'static str {
        match self {
            Format::No => "no",
            Format::Raw => "raw",
            Format::Ascii => "ascii",
            Format::Quoted => "quoted",
            Format::Msgpack => "msgpack",
            Format::Hex => "hex",
        }
    }

    /// Appends the printed form of `body` to `out`.
    pub fn encode_into(self, body: &[u8], out: &mut Vec<u8>) {
        match self {
            Format::No => {}
            Format::Raw => out.extend_from_slice(body),
            Format::Ascii => ascii(body, out),
            Format::Quoted => quoted(body, out),
            Format::Msgpack => msgpack(body, out),
            Format::Hex => hex(body, out),
        }
    }

    /// Returns the printed form of `body`.
    pub fn encode(self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 8);
        self.encode_into(body, &mut out);
        out
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// C `isprint` in the C locale: 0x20 to 0x7E.
pub fn is_printable(b: u8) -> bool {
    (0x20..=0x7e).contains(&b)
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn push_hex_escape(b: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX_DIGITS[usize::from(b >> 4)],
        HEX_DIGITS[usize::from(b & 15)],
    ]);
}

/// `ascii`: each byte printable → itself, otherwise `.`; nngcat adds no newline.
pub fn ascii(body: &[u8], out: &mut Vec<u8>) {
    out.extend(body.iter().map(|&b| if is_printable(b) { b } else { b'.' }));
}

/// `quoted`: `"` + escaped body + `"` + `\n`. LF `\n`, CR `\r`, TAB `\t` (nngcat), `"` and `\`
/// backslash-escaped, other non-printables `\xNN` in lowercase hex.
pub fn quoted(body: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b if is_printable(b) => out.push(b),
            b => push_hex_escape(b, out),
        }
    }
    out.extend_from_slice(b"\"\n");
}

/// `msgpack`: a bin 8/16/32 header (`C4 len`, `C5 len16`, `C6 len32`, big-endian), then the
/// bytes, no separator.
pub fn msgpack(body: &[u8], out: &mut Vec<u8>) {
    let len = body.len();
    if len < 256 {
        out.extend_from_slice(&[0xc4, len as u8]);
    } else if len < 65536 {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        // nngcat writes the low 32 bits; bodies of 4 GiB or more cannot be received anyway.
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(body);
}

/// `hex`: `"` + `\xNN` for every byte + `"` + `\n`.
pub fn hex(body: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in body {
        push_hex_escape(b, out);
    }
    out.extend_from_slice(b"\"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("text"), None);
        assert_eq!(Format::from_name("RAW"), None);
    }

    #[test]
    fn no_prints_nothing() {
        assert!(Format::No.encode(b"anything\n").is_empty());
    }

    #[test]
    fn raw_is_identity() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(Format::Raw.encode(&all), all);
        assert!(Format::Raw.encode(b"").is_empty());
    }

    #[test]
    fn ascii_replaces_unprintables_and_adds_no_newline() {
        assert_eq!(
            Format::Ascii.encode(b"hi\tthere\n\x00\x7f\x80\xff ~"),
            b"hi.there..... ~"
        );
        assert!(Format::Ascii.encode(b"").is_empty());
    }

    #[test]
    fn quoted_escapes() {
        assert_eq!(Format::Quoted.encode(b"one flew"), b"\"one flew\"\n");
        assert_eq!(
            Format::Quoted.encode(b"a\nb\rc\td\"e\\f"),
            b"\"a\\nb\\rc\\td\\\"e\\\\f\"\n".to_vec()
        );
        assert_eq!(
            Format::Quoted.encode(b"\x00\x01\x1f\x7f\x80\xff"),
            b"\"\\x00\\x01\\x1f\\x7f\\x80\\xff\"\n"
        );
        assert_eq!(Format::Quoted.encode(b""), b"\"\"\n");
        // Every printable except the two escaped ones is passed through.
        let printable: Vec<u8> = (0x20..=0x7e).filter(|&b| b != b'"' && b != b'\\').collect();
        let mut want = vec![b'"'];
        want.extend_from_slice(&printable);
        want.extend_from_slice(b"\"\n");
        assert_eq!(Format::Quoted.encode(&printable), want);
    }

    #[test]
    fn quoted_matches_nngcat_pubsub_script() {
        let mut out = Vec::new();
        for m in [&b"one flew"[..], b"twofer test", b"one more"] {
            Format::Quoted.encode_into(m, &mut out);
        }
        assert_eq!(out, b"\"one flew\"\n\"twofer test\"\n\"one more\"\n");
    }

    #[test]
    fn hex_escapes_every_byte() {
        assert_eq!(
            Format::Hex.encode(b"Az\n\xff"),
            b"\"\\x41\\x7a\\x0a\\xff\"\n"
        );
        assert_eq!(Format::Hex.encode(b""), b"\"\"\n");
    }

    #[test]
    fn msgpack_headers() {
        assert_eq!(Format::Msgpack.encode(b""), [0xc4, 0]);
        assert_eq!(Format::Msgpack.encode(b"abc"), [0xc4, 3, b'a', b'b', b'c']);
        let b255 = vec![7u8; 255];
        assert_eq!(&Format::Msgpack.encode(&b255)[..2], [0xc4, 255]);
        let b256 = vec![7u8; 256];
        let e = Format::Msgpack.encode(&b256);
        assert_eq!(&e[..3], [0xc5, 1, 0]);
        assert_eq!(e.len(), 3 + 256);
        let b65535 = vec![7u8; 65535];
        assert_eq!(&Format::Msgpack.encode(&b65535)[..3], [0xc5, 0xff, 0xff]);
        let b65536 = vec![7u8; 65536];
        let e = Format::Msgpack.encode(&b65536);
        assert_eq!(&e[..5], [0xc6, 0, 1, 0, 0]);
        assert_eq!(e.len(), 5 + 65536);
        assert_eq!(&e[5..], &b65536[..]);
    }

    #[test]
    fn printable_range() {
        assert!(!is_printable(0x1f));
        assert!(is_printable(b' '));
        assert!(is_printable(b'~'));
        assert!(!is_printable(0x7f));
        assert!(!is_printable(0xa1));
    }
}
