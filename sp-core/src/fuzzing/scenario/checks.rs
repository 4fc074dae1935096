//! The scenario's model of what a core must do: which replies and responses it may hand
//! over, where REP and RESPONDENT replies go, how many messages its queues may hold, and
//! where every message PUSH and raw REQ took went.

use bytes::Bytes;

use super::{push_bounded, word_at, Key, Pending, Scenario};
use crate::fuzzing::cores::{is_parse_of, Core, Role};
use crate::protocol::pair1::POLY_PIPE_QUEUE_LEN;
use crate::protocol::reqrep_raw::XREP_PIPE_QUEUE_LEN;
use crate::protocol::survey::{
    SURVEYOR_PIPE_QUEUE_LEN, XRESPONDENT_PIPE_QUEUE_LEN, XSURVEYOR_PIPE_QUEUE_LEN,
};
use crate::protocol::{SendError, Transmit};
use crate::stats::{CoreStats, DropReason};
use crate::Message;

impl Scenario {
    pub(super) fn after_send(
        &mut self,
        key: Key,
        result: Result<(), SendError>,
        body: &Bytes,
        txs: &[Transmit],
    ) {
        match self.role {
            Role::Req => {
                let Core::Req(req) = &self.core else {
                    unreachable!()
                };
                match result {
                    Ok(()) => {
                        let id = match key {
                            None => req.request_id(),
                            Some(ctx) => req.context_request_id(ctx),
                        };
                        let id = id.expect("REQ took a request but has none outstanding");
                        let pending = Pending {
                            id: id.get(),
                            deadline: None,
                        };
                        self.pending.insert(key, pending);
                    }
                    // A failed send cancels the request anyway.
                    Err(SendError::WouldBlock) => {
                        self.pending.remove(&key);
                    }
                    Err(_) => {}
                }
            }
            Role::Surveyor => {
                let Core::Surveyor(surveyor) = &self.core else {
                    unreachable!()
                };
                if result.is_ok() {
                    let id = match key {
                        None => surveyor.survey_id(),
                        Some(ctx) => surveyor.context_survey_id(ctx),
                    };
                    let id = id.expect("SURVEYOR took a survey but runs none");
                    let time = self.survey_times.get(&key).copied().unwrap_or_default();
                    let pending = Pending {
                        id: id.get(),
                        deadline: self.now.checked_add(time),
                    };
                    self.pending.insert(key, pending);
                }
            }
            Role::Rep | Role::Respondent => match result {
                Ok(()) => {
                    let (pipe, request) = self
                        .saved
                        .remove(&key)
                        .expect("a reply was taken without a received request");
                    let attached = self
                        .slots
                        .iter()
                        .any(|s| s.id == pipe && s.live && !s.kicked);
                    if attached {
                        assert_eq!(txs.len(), 1, "a reply did not go out at once");
                        let tx = &txs[0];
                        assert_eq!(
                            tx.pipe, pipe,
                            "a reply went to another pipe than its request's"
                        );
                        assert_eq!(&tx.msg.body, body, "the reply's body changed");
                        let header = &tx.msg.header;
                        let routed = self.delivered.iter().any(|(p, wire)| {
                            *p == pipe
                                && wire.len() == header.len() + request.len()
                                && wire.starts_with(header)
                                && wire.ends_with(&request)
                        });
                        assert!(routed, "a reply's header is not its request's backtrace");
                    } else {
                        assert!(txs.is_empty(), "a reply went out although its pipe is gone");
                    }
                }
                Err(SendError::BadState) => {
                    assert!(
                        !self.saved.contains_key(&key),
                        "a reply was refused although a request was received"
                    );
                }
                Err(_) => {}
            },
            Role::Push | Role::XPush | Role::XReq if result.is_ok() => self.sent_ok += 1,
            _ => {}
        }
    }

    pub(super) fn check_received(&mut self, key: Key, msg: &Message) {
        let pipe = msg.pipe.expect("a received message names its pipe");
        let parsed = self
            .delivered
            .iter()
            .any(|(p, wire)| *p == pipe && is_parse_of(self.role, self.max_ttl, pipe, wire, msg));
        assert!(
            parsed,
            "{:?} handed over {msg:?}, which is not its reading of anything {pipe:?} delivered",
            self.role
        );
        if !msg.header.is_empty() {
            push_bounded(&mut self.app_headers, msg.header.clone());
        }
        // The replies a reply or response could be: what `pipe` delivered, ID first.
        let ids = || {
            self.delivered
                .iter()
                .filter(|(p, wire)| *p == pipe && wire.len() >= 4 && wire[4..] == msg.body)
                .filter_map(|(_, wire)| word_at(wire))
        };
        match self.role {
            Role::Req => {
                let pending = self
                    .pending
                    .remove(&key)
                    .expect("REQ handed over a reply with no request outstanding");
                assert!(
                    ids().any(|id| id == pending.id),
                    "REQ handed over a reply to another request than the context's latest"
                );
            }
            Role::Surveyor => {
                let pending = *self
                    .pending
                    .get(&key)
                    .expect("SURVEYOR handed over a response with no survey running");
                assert!(
                    ids().any(|id| id == pending.id),
                    "SURVEYOR handed over a response to another survey than the current one"
                );
                if let Some(deadline) = pending.deadline {
                    assert!(
                        self.now < deadline,
                        "SURVEYOR handed over a response after the deadline"
                    );
                }
            }
            Role::Rep | Role::Respondent => {
                self.saved.insert(key, (pipe, msg.body.clone()));
            }
            _ => {}
        }
    }

    /// `recv_queued` and `send_queued` stay within what the queues hold: each queue's length
    /// (the current setting), plus one message per pipe that was receiving when a pausing
    /// queue filled up (a pipe's last message is always taken), plus a request per context
    /// handed to it or waiting for a pipe; the driver's per-pipe queues bound the messages
    /// PUSH and raw REQ get back.
    pub(super) fn check_bounds(&self, stats: &CoreStats) {
        let core = self.core.peek();
        let live = self.live_count();
        let contexts = self.contexts.iter().filter(|(_, open)| *open).count();
        let rb = core.recv_buffer().unwrap_or(0);
        let recv_bound = match self.role {
            Role::Pull
            | Role::XPull
            | Role::XReq
            | Role::Pair
            | Role::XPair
            | Role::Pair1
            | Role::XPair1
            | Role::Pair1Poly
            | Role::XRep
            | Role::XRespondent
            | Role::XSurveyor => rb + self.pipes_added,
            Role::Rep | Role::Respondent => rb + self.pipes_added + self.max_open_contexts,
            Role::Req => 1 + contexts,
            Role::Sub | Role::Surveyor => rb * (1 + contexts),
            Role::XSub | Role::Bus | Role::XBus | Role::Star | Role::XStar => rb,
            Role::Push | Role::XPush | Role::Pub | Role::XPub => 0,
        };
        assert!(
            stats.recv_queued <= recv_bound,
            "{:?} holds {} received messages, above its bound {recv_bound}",
            self.role,
            stats.recv_queued
        );
        let per_pipe = core.send_buffer().unwrap_or(match self.role {
            Role::Surveyor => SURVEYOR_PIPE_QUEUE_LEN,
            Role::XSurveyor => XSURVEYOR_PIPE_QUEUE_LEN,
            Role::XRespondent => XRESPONDENT_PIPE_QUEUE_LEN,
            Role::XRep => XREP_PIPE_QUEUE_LEN,
            Role::Pair1Poly => POLY_PIPE_QUEUE_LEN,
            _ => 0,
        });
        let send_bound = match self.role {
            Role::Push | Role::XPush | Role::XReq => self.driver_cap * self.max_live_pipes,
            Role::Req => 1 + contexts,
            _ => per_pipe * live,
        };
        assert!(
            stats.send_queued <= send_bound,
            "{:?} holds {} messages to send, above its bound {send_bound}",
            self.role,
            stats.send_queued
        );
    }

    /// PUSH, raw PUSH and raw REQ: every message sent (and every stray `Unsent`) is written,
    /// in a driver's queue, back in the core waiting for a pipe, or counted as `PipeClosed`.
    pub(super) fn check_accounting(&self, stats: &CoreStats) {
        if !matches!(self.role, Role::Push | Role::XPush | Role::XReq) {
            return;
        }
        let queued: u64 = self.slots.iter().map(|s| s.queue.len() as u64).sum();
        let accounted = self.written
            + queued
            + stats.send_queued as u64
            + stats.dropped.get(DropReason::PipeClosed);
        assert_eq!(
            self.sent_ok + self.stray,
            accounted,
            "{:?} lost or duplicated a message: sent {} + stray {}, but written {} + queued {} + \
             returned {} + dropped {}",
            self.role,
            self.sent_ok,
            self.stray,
            self.written,
            queued,
            stats.send_queued,
            stats.dropped.get(DropReason::PipeClosed)
        );
    }
}
