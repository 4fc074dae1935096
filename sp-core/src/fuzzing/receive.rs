//! `protocol_receive`: arbitrary messages from peers into every core, raw and cooked, for
//! the parsing of SP headers and backtraces.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::cores::{is_parse_of, Core, Cursor, Role, Settings, MAX_TTLS, ROLES};
use crate::protocol::{Event, Input};
use crate::{Message, PipeId};

/// Delivers arbitrary messages from peers to one core, raw or cooked, and checks how it
/// parses their SP headers (backtraces, request and survey IDs, hop counts).
///
/// Checked: no panic; every message the application receives is what the role makes of one
/// message its pipe delivered (`is_parse_of`: the body follows the role's header on the wire,
/// the header is what the role shows of it, backtraces and hop counts within the TTL);
/// transmits go only to attached pipes the core has not closed.
///
/// The first byte picks the role (one of 25, cooked and raw), the second its settings and how
/// many pipes (1–4) attach. Then each record `[control] [length] [bytes]` delivers a message on
/// the pipe `control` names, while that pipe is receiving; `control` also lets the application
/// receive everything (answering each message, which routes replies on the REP side) and
/// send a new request. Every transmit is written at once and every pipe the core closes is
/// removed, as a driver does.
pub fn protocol_receive(data: &[u8], start: Instant) {
    let mut c = Cursor::new(data);
    let role = ROLES[usize::from(c.byte()) % ROLES.len()];
    let flags = c.byte();
    let settings = Settings {
        recv_buffer: [1, 2, 16, 128][usize::from(flags & 3)],
        send_buffer: 2,
        max_ttl: MAX_TTLS[usize::from((flags >> 2) & 3)],
        resend: Some(Duration::from_secs(1)),
        survey_time: Duration::from_secs(1),
        prefer_new: flags & 0x10 != 0,
        seed: u64::from(flags),
    };
    let now = start;
    let mut core = Core::new(role, &settings);
    if let Core::Sub(sub) = &mut core {
        sub.subscribe(if flags & 0x80 == 0 { b"" } else { b"t" });
    }
    let peer = core.peek().peer_protocol();
    let mut pipes = Vec::new();
    let mut delivered: Vec<(PipeId, Bytes)> = Vec::new();
    for n in 1..=1 + u32::from((flags >> 5) & 3) {
        let pipe = PipeId::new(n).expect("small pipe ids are valid");
        core.get().handle(Input::PipeAdded { pipe, peer }, now);
        pipes.push((pipe, true));
    }
    drain_receive(&mut core, &mut pipes, now);
    probe(&mut core, now);
    drain_receive(&mut core, &mut pipes, now);
    while !c.is_empty() {
        let control = c.byte();
        let len = if control & 0x40 == 0 {
            usize::from(c.byte())
        } else {
            usize::from(c.byte()) << 4
        };
        let wire = Bytes::copy_from_slice(c.bytes(len));
        let (pipe, alive) = pipes[usize::from(control & 3) % pipes.len()];
        if alive && core.peek().is_receiving(pipe) {
            delivered.push((pipe, wire.clone()));
            let msg = Message::new(wire);
            core.get().handle(Input::Received { pipe, msg }, now);
            drain_receive(&mut core, &mut pipes, now);
        }
        if control & 0x10 != 0 {
            while let Ok(msg) = core.get().recv(now) {
                check_parsed(role, settings.max_ttl, &delivered, &msg);
                let _ = core
                    .get()
                    .send(Message::with_header(msg.header, &b"re"[..]), now);
                drain_receive(&mut core, &mut pipes, now);
            }
        }
        if control & 0x20 != 0 {
            probe(&mut core, now);
            drain_receive(&mut core, &mut pipes, now);
        }
    }
}

/// Asserts that `msg` is a parse of one of the `delivered` wire messages.
fn check_parsed(role: Role, max_ttl: u8, delivered: &[(PipeId, Bytes)], msg: &Message) {
    let pipe = msg.pipe.expect("a received message names its pipe");
    assert!(
        delivered
            .iter()
            .any(|(p, wire)| *p == pipe && is_parse_of(role, max_ttl, pipe, wire, msg)),
        "{role:?} handed over {msg:?}, which is not its reading of anything {pipe:?} delivered"
    );
}

/// The application sends a request (or any message): a REQ or SURVEYOR then has an ID out
/// that replies can match.
fn probe(core: &mut Core, now: Instant) {
    let msg = Message::with_header(&[0x80, 0, 0, 1][..], &b"probe"[..]);
    let _ = core.get().send(msg, now);
}

/// Drains a core as a driver with room in every pipe's queue does: each transmit is written
/// and its pipe reported writable at once, each pipe the core closes is removed.
fn drain_receive(core: &mut Core, pipes: &mut [(PipeId, bool)], now: Instant) {
    loop {
        let mut inputs = Vec::new();
        while let Some(tx) = core.get().poll_transmit() {
            let known = pipes.iter().any(|&(p, alive)| p == tx.pipe && alive);
            assert!(known, "transmit for {:?}, which is not attached", tx.pipe);
            inputs.push(Input::PipeWritable { pipe: tx.pipe });
        }
        while let Some(event) = core.get().poll_event() {
            if let Event::ClosePipe { pipe, .. } = event {
                if let Some(slot) = pipes.iter_mut().find(|(p, alive)| *p == pipe && *alive) {
                    slot.1 = false;
                    inputs.push(Input::PipeRemoved { pipe });
                }
            }
        }
        if inputs.is_empty() {
            return;
        }
        for input in inputs {
            let dead = match &input {
                Input::PipeWritable { pipe } => !pipes.iter().any(|&(p, a)| p == *pipe && a),
                _ => false,
            };
            if !dead {
                core.get().handle(input, now);
            }
        }
    }
}
