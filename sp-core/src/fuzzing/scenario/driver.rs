//! The scenario's driver: pipes come and go, their writers drain their queues, peers send.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{Scenario, Slot, MAX_LIVE_PIPES, STRAY_PIPE_BASE};
use crate::fuzzing::cores::Cursor;
use crate::protocol::Input;
use crate::stats::DropReason;
use crate::{Message, PipeId, ProtocolId};

impl Scenario {
    pub(super) fn add_pipe(&mut self, c: &mut Cursor<'_>) {
        let pick = c.byte();
        if self.live_count() >= MAX_LIVE_PIPES {
            return;
        }
        let peer = if pick & 7 == 0 {
            ProtocolId::ALL[usize::from(pick / 8) % ProtocolId::ALL.len()]
        } else {
            self.core.peek().peer_protocol()
        };
        let id = PipeId::new(self.next_pipe).expect("scenario pipe ids stay small");
        self.next_pipe += 1;
        self.slots.push(Slot {
            id,
            live: true,
            kicked: false,
            busy: false,
            queue: VecDeque::new(),
        });
        self.pipes_added += 1;
        self.max_live_pipes = self.max_live_pipes.max(self.live_count());
        self.core
            .get()
            .handle(Input::PipeAdded { pipe: id, peer }, self.now);
        self.pump();
    }

    /// Removes a pipe: either its write queue was written out, or its messages come back
    /// with `Unsent`, in order, right before `PipeRemoved`.
    pub(super) fn remove_pipe(&mut self, c: &mut Cursor<'_>) {
        let return_unsent = c.byte() & 1 != 0;
        let Some(i) = self.pick_live(c) else { return };
        let pipe = self.slots[i].id;
        let queue = std::mem::take(&mut self.slots[i].queue);
        self.slots[i].live = false;
        if return_unsent {
            for msg in queue {
                self.core
                    .get()
                    .handle(Input::Unsent { pipe, msg }, self.now);
            }
        } else {
            self.written += queue.len() as u64;
        }
        self.core
            .get()
            .handle(Input::PipeRemoved { pipe }, self.now);
        self.pump();
        assert!(
            !self.core.peek().is_receiving(pipe),
            "{pipe:?} is still receiving after PipeRemoved"
        );
    }

    /// The pipe's writer wrote up to two messages; then the driver reports the pipe writable
    /// if the core waits for that and its queue has room.
    pub(super) fn writable(&mut self, c: &mut Cursor<'_>) {
        let written = usize::from(c.byte() % 3);
        let Some(i) = self.pick_live(c) else { return };
        let slot = &mut self.slots[i];
        for _ in 0..written {
            if slot.queue.pop_front().is_some() {
                self.written += 1;
            }
        }
        if slot.busy && slot.queue.len() < self.driver_cap {
            slot.busy = false;
            let pipe = slot.id;
            self.core
                .get()
                .handle(Input::PipeWritable { pipe }, self.now);
            self.pump();
        }
    }

    /// The pipe's writer wrote some messages without the core hearing of it.
    pub(super) fn write_out(&mut self, c: &mut Cursor<'_>) {
        let n = usize::from(c.byte() % 4);
        let Some(i) = self.pick_live(c) else { return };
        for _ in 0..n {
            if self.slots[i].queue.pop_front().is_some() {
                self.written += 1;
            }
        }
    }

    /// A peer's message arrives on a receiving pipe.
    pub(super) fn receive(&mut self, c: &mut Cursor<'_>) {
        let Some(i) = self.pick_live(c) else { return };
        let pipe = self.slots[i].id;
        let wire = self.build_wire(c);
        if !self.core.peek().is_receiving(pipe) {
            return;
        }
        assert!(
            !self.slots[i].kicked,
            "{pipe:?} is receiving although the core closed it"
        );
        self.delivered.push((pipe, wire.clone()));
        let msg = Message::new(wire);
        self.core
            .get()
            .handle(Input::Received { pipe, msg }, self.now);
        self.pump();
    }

    /// Builds a peer's message: arbitrary bytes, a reply to an ID (one the core sent, or any),
    /// a request with a backtrace, or a hop-count word; then a body, and usually a serial
    /// that makes it unique.
    pub(super) fn build_wire(&mut self, c: &mut Cursor<'_>) -> Bytes {
        let form = c.byte();
        let mut wire = Vec::new();
        match form & 3 {
            0 => {
                let n = usize::from(c.byte() % 48);
                wire.extend_from_slice(c.bytes(n));
            }
            1 => {
                let pick = usize::from(c.byte());
                if form & 4 != 0 && !self.tx_headers.is_empty() {
                    wire.extend_from_slice(&self.tx_headers[pick % self.tx_headers.len()]);
                } else {
                    let flag = if form & 8 != 0 { 0x8000_0000 } else { 0 };
                    wire.extend_from_slice(&(c.word() | flag).to_be_bytes());
                }
            }
            2 => {
                for _ in 0..(form >> 2) % 4 {
                    wire.extend_from_slice(&(c.word() & 0x7fff_ffff).to_be_bytes());
                }
                wire.extend_from_slice(&(c.word() | 0x8000_0000).to_be_bytes());
            }
            _ => wire.extend_from_slice(&[0, 0, 0, c.byte()]),
        }
        let n = usize::from(c.byte() % 24);
        wire.extend_from_slice(c.bytes(n));
        if form & 0x80 == 0 {
            self.serial += 1;
            wire.extend_from_slice(&(0x5e00_0000 | self.serial).to_be_bytes());
        }
        Bytes::from(wire)
    }

    /// An `Unsent` (then `PipeRemoved`) for a pipe the core does not know: removed, or never
    /// attached. It must be counted once as `PipeClosed`.
    pub(super) fn stray_unsent(&mut self, c: &mut Cursor<'_>) {
        let pick = c.byte();
        let gone: Vec<PipeId> = self
            .slots
            .iter()
            .filter(|s| !s.live)
            .map(|s| s.id)
            .collect();
        let pipe = if pick & 1 == 0 && !gone.is_empty() {
            gone[usize::from(pick >> 1) % gone.len()]
        } else {
            PipeId::new(STRAY_PIPE_BASE + u32::from(pick >> 1)).expect("below PipeId::MAX")
        };
        let header = if self.tx_headers.is_empty() {
            Bytes::new()
        } else {
            self.tx_headers[usize::from(c.byte()) % self.tx_headers.len()].clone()
        };
        let before = self.core.peek().stats().dropped.get(DropReason::PipeClosed);
        let msg = Message::with_header(header, &b"stray"[..]);
        self.core
            .get()
            .handle(Input::Unsent { pipe, msg }, self.now);
        self.core
            .get()
            .handle(Input::PipeRemoved { pipe }, self.now);
        self.stray += 1;
        let after = self.core.peek().stats().dropped.get(DropReason::PipeClosed);
        assert_eq!(
            after,
            before + 1,
            "an Unsent for unknown {pipe:?} was not counted once as PipeClosed"
        );
        self.pump();
    }
}
