//! Entry points for the cargo-fuzz targets in `fuzz/` and for the corpus replay test
//! (`sp-core/tests/fuzz_corpus_replay.rs`), which runs every committed input on stable Rust.
//!
//! Each function accepts arbitrary bytes. It panics only when an invariant of the code under
//! test is broken, which is a bug. The functions live here, and not in the fuzz crate, so that
//! the replay test runs the very same checks and so that they may use crate internals.
//!
//! * [`frame_decoder()`] (module `frame`): the SP framing of stream transports.
//! * [`handshake()`] (module `handshake`): the SP protocol header exchange.
//! * [`protocol_receive()`] (module `receive`): peers' messages into every core, raw and
//!   cooked.
//! * [`protocol_scenario()`] (module `scenario`): sequences of pipe, application and clock
//!   events against every core, with its invariants checked after every step.
//!
//! `cores` builds the cores the last two share.

mod cores;
mod frame;
mod handshake;
mod receive;
mod scenario;

pub use frame::frame_decoder;
pub use handshake::handshake;
pub use receive::protocol_receive;
pub use scenario::{protocol_scenario, protocol_scenario_transcript};

/// FNV-1a: a stable hash of the input to seed the chunking, with no std hasher randomness.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::handshake::header_bytes;
    use crate::ProtocolId;

    #[test]
    fn frame_decoder_accepts_edge_inputs() {
        for input in [
            &[][..],
            &[0],
            &[0, 0x80],
            &[1, 0, 0, 0, 1],
            &[0, 0, 0, 0, 0, 0, 0, 0, 10, 1, 2],
            &[0, 0x10, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x0f, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa, 2],
        ] {
            frame_decoder(input);
        }
    }

    #[test]
    fn handshake_accepts_edge_inputs() {
        let mut good = vec![0x04];
        good.extend_from_slice(&header_bytes(ProtocolId::REP));
        good.extend_from_slice(b"trailing frame bytes");
        for ending in 0..4u8 {
            good[0] = 0x04 | (ending << 4);
            let now = Instant::now();
            handshake(&good, now);
            handshake(&good[..5], now);
            handshake(&[ending << 4], now);
        }
        handshake(&[], Instant::now());
    }
}
