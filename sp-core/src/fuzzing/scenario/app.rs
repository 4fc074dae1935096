//! The scenario's application: sends, receives, contexts, role options and the clock.

use std::time::Duration;

use bytes::Bytes;

use super::{Out, Scenario};
use crate::fuzzing::cores::{Core, Cursor, DURATIONS, STEPS};
use crate::protocol::{ContextError, RecvError};
use crate::Message;

impl Scenario {
    pub(super) fn app_send(&mut self, c: &mut Cursor<'_>) {
        let key = self.pick_key(c);
        let n = usize::from(c.byte() % 24);
        let body = Bytes::copy_from_slice(c.bytes(n));
        let header = match c.byte() % 4 {
            0 => Bytes::new(),
            1 => self.app_headers.back().cloned().unwrap_or_default(),
            2 => {
                let n = usize::from(c.byte() % 12);
                Bytes::copy_from_slice(c.bytes(n))
            }
            _ => {
                let pipe = self
                    .slots
                    .get(usize::from(c.byte()))
                    .map_or(0, |s| s.id.get());
                let mut h = pipe.to_be_bytes().to_vec();
                h.extend_from_slice(&(c.word() | 0x8000_0000).to_be_bytes());
                Bytes::from(h)
            }
        };
        let pick = usize::from(c.byte());
        let pipe = (pick & 1 != 0 && !self.slots.is_empty())
            .then(|| self.slots[(pick >> 1) % self.slots.len()].id);
        let msg = Message::with_header(header, body.clone()).with_pipe(pipe);
        let now = self.now;
        let result = match key {
            None => self.core.get().send(msg, now),
            Some(ctx) => self.core.get().send_on(ctx, msg, now),
        };
        self.out.push(Out::Send(result));
        let txs = self.pump();
        self.after_send(key, result, &body, &txs);
    }

    pub(super) fn app_recv(&mut self, c: &mut Cursor<'_>) {
        let key = self.pick_key(c);
        let now = self.now;
        let result = match key {
            None => self.core.get().recv(now),
            Some(ctx) => self.core.get().recv_on(ctx, now),
        };
        self.out.push(Out::Recv(result.clone()));
        self.pump();
        match &result {
            Ok(msg) => self.check_received(key, msg),
            Err(RecvError::ConnectionReset | RecvError::SurveyExpired) => {
                self.pending.remove(&key);
            }
            Err(_) => {}
        }
    }

    pub(super) fn open_context(&mut self) {
        let result = self.core.get().open_context(self.now);
        self.out.push(Out::Open(result));
        if let Ok(ctx) = result {
            assert!(!self.is_open(ctx), "{ctx} was handed out twice while open");
            self.contexts.push((ctx, true));
            let open = self.contexts.iter().filter(|(_, open)| *open).count();
            self.max_open_contexts = self.max_open_contexts.max(open);
            let key = Some(ctx);
            self.pending.remove(&key);
            self.saved.remove(&key);
            let time = self.survey_times.get(&None).copied().unwrap_or_default();
            self.survey_times.insert(key, time);
        }
        self.pump();
    }

    pub(super) fn close_context(&mut self, c: &mut Cursor<'_>) {
        let Some(ctx) = self.pick_context(c) else {
            return;
        };
        let was_open = self.is_open(ctx);
        let result = self.core.get().close_context(ctx, self.now);
        self.out.push(Out::Context(result));
        match result {
            Ok(()) => assert!(was_open, "closed {ctx}, which was not open"),
            Err(ContextError::UnknownContext) => {
                assert!(!was_open, "refused to close open {ctx}");
            }
            Err(_) => {}
        }
        for entry in &mut self.contexts {
            if entry.0 == ctx {
                entry.1 = false;
            }
        }
        self.pending.remove(&Some(ctx));
        self.saved.remove(&Some(ctx));
        self.pump();
    }

    /// Moves the clock (by a step, or to the next deadline or just before it) and fires the
    /// timers that are due.
    pub(super) fn advance(&mut self, c: &mut Cursor<'_>) {
        let pick = c.byte();
        let deadline = self.core.peek().poll_timeout();
        let target = match (pick % 4, deadline) {
            (0, Some(d)) => d,
            (1, Some(d)) => d.checked_sub(Duration::from_nanos(1)).unwrap_or(d),
            _ => self
                .now
                .checked_add(STEPS[usize::from(pick >> 2) % STEPS.len()])
                .unwrap_or(self.now),
        };
        self.now = self.now.max(target);
        let now = self.now;
        self.core.get().handle_timeout(now);
        self.pump();
        if let Some(next) = self.core.peek().poll_timeout() {
            assert!(
                next > now,
                "a deadline at or before now survived handle_timeout"
            );
        }
    }

    /// The settings only some roles have: resend intervals and ticks, survey times,
    /// subscriptions.
    pub(super) fn role_op(&mut self, c: &mut Cursor<'_>) {
        let pick = c.byte();
        let ctx = self.pick_context(c);
        let duration = DURATIONS[usize::from(pick >> 5)];
        let n = usize::from(c.byte() % 4);
        let topic = c.bytes(n);
        match &mut self.core {
            Core::Req(req) => {
                let interval = (pick & 2 != 0).then_some(duration);
                match ctx {
                    Some(ctx) if pick & 1 != 0 => {
                        let result = req.set_context_resend_interval(ctx, interval);
                        self.out.push(Out::Context(result));
                    }
                    _ if pick & 4 != 0 => req.set_resend_tick(interval),
                    _ => req.set_resend_interval(interval),
                }
            }
            Core::Surveyor(surveyor) => match ctx {
                Some(ctx) if pick & 1 != 0 => {
                    let result = surveyor.set_context_survey_time(ctx, duration);
                    if result.is_ok() {
                        self.survey_times.insert(Some(ctx), duration);
                    }
                    self.out.push(Out::Context(result));
                }
                _ => {
                    surveyor.set_survey_time(duration);
                    self.survey_times.insert(None, duration);
                }
            },
            Core::Sub(sub) => {
                let result = match (pick & 7, ctx) {
                    (0 | 1, _) => {
                        sub.subscribe(topic);
                        Ok(())
                    }
                    (2, _) => sub.unsubscribe(topic),
                    (3, Some(ctx)) => sub.subscribe_on(ctx, topic),
                    (4, Some(ctx)) => sub.unsubscribe_on(ctx, topic),
                    _ => {
                        sub.set_prefer_new(pick & 8 != 0);
                        Ok(())
                    }
                };
                self.out.push(Out::Subscribe(result));
            }
            Core::XSub(xsub) => {
                let result = if pick & 1 == 0 {
                    xsub.subscribe(topic)
                } else {
                    xsub.set_prefer_new(pick & 2 != 0);
                    Ok(())
                };
                self.out.push(Out::Subscribe(result));
            }
            Core::Other(_) => {}
        }
        self.pump();
    }
}
