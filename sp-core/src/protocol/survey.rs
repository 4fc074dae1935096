//! SURVEYOR and RESPONDENT, the survey roles, cooked and raw (SP-PROTOCOLS.md sections 4.6 and
//! 5.1, `rfc/sp-surveyor-01` in nanomsg/nanomsg).
//!
//! A survey travels as `[survey ID] body` and is broadcast to every respondent; each
//! RESPONDENT-side device hop prepends a pipe word, exactly as for REQ/REP (see
//! [`crate::backtrace`]). A respondent sends the whole stack back in front of its response; the
//! surveyor strips the survey ID and delivers the rest until the survey's deadline.
//!
//! [`XSurveyor`] and [`XRespondent`] are the raw forms that devices are built from: a survey
//! relay is an [`XRespondent`] facing the surveyors and an [`XSurveyor`] facing the respondents,
//! forwarding messages, headers included, unchanged in both directions (section 5.2).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

use crate::backtrace::{read_word, RequestId, RequestIdSequence, DEFAULT_MAX_TTL, WORD_LEN};
use crate::protocol::context::{readable, Contexts, CtxKey, DeadlineSet};
use crate::protocol::replier::{forward_to_cooked_replier, CookedReplier};
use crate::protocol::shared::{
    check_queue_len, deadline_after, forward_queue_to_core, forward_to_core, BacktraceCore,
    Broadcast, Overflow,
};
use crate::protocol::{
    ConfigError, ContextError, ContextId, Event, Input, Protocol, RecvError, SendError, Transmit,
};
use crate::stats::{CoreStats, DropCounts, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// How long a survey collects responses: 1 s, as in NNG, mangos and nanomsg (the draft RFC's
/// 60 s is used by none of them).
pub const DEFAULT_SURVEY_TIME: Duration = Duration::from_secs(1);

/// How many responses (SURVEYOR) or surveys (RESPONDENT and the raw roles) wait for
/// [`Protocol::recv`]: 128, NNG's per-context queue.
pub const DEFAULT_RECV_BUFFER: usize = 128;

/// How many surveys wait for one busy pipe before that pipe misses a survey: 8, fixed in NNG.
pub const SURVEYOR_PIPE_QUEUE_LEN: usize = 8;

/// How many messages wait for one busy pipe of an [`XSurveyor`]: 16, as in NNG.
pub const XSURVEYOR_PIPE_QUEUE_LEN: usize = 16;

/// How many responses wait for one busy pipe of an [`XRespondent`]: 2, as in NNG.
pub const XRESPONDENT_PIPE_QUEUE_LEN: usize = 2;

/// The most backtrace words a response to an [`XSurveyor`] may carry. Responses are not
/// TTL-checked (section 5.3); this only bounds the parser, at the largest TTL any
/// implementation allows.
const XSURVEYOR_MAX_STACK: u8 = u8::MAX;

/// Settings for [`Surveyor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurveyorConfig {
    /// How long each survey collects responses. Default: 1 s. Zero expires a survey as soon as
    /// it is sent (mangos' behaviour); a duration too long to add to an [`Instant`] never
    /// expires.
    pub survey_time: Duration,
    /// Seed for the survey ID sequence. Default: 0. Give every socket its own seed.
    pub seed: u64,
    /// How many responses to the current survey may wait for [`Protocol::recv`]; further
    /// responses are dropped (pipes are never paused). Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for SurveyorConfig {
    fn default() -> Self {
        Self {
            survey_time: DEFAULT_SURVEY_TIME,
            seed: 0,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The cooked SURVEYOR role (SP type 0x62): broadcasts a survey and collects the responses
/// that arrive before its deadline.
///
/// Follows SP-PROTOCOLS.md section 4.6 (NNG's `surv0` without contexts). Each survey gets a
/// fresh survey ID from a seeded sequence (a [`RequestId`]: top bit set); that ID is the whole
/// header.
///
/// ```text
///            send: new ID, broadcast, deadline armed at now + survey_time
///  +------+ ------------------------------------------------> +---------+ --+ send: a new survey
///  | Idle |                                                   | Running |   | replaces this one
///  +------+                                                   +---------+ <-+ (its queued and
///     ^  ^                                                        |  ^        late responses drop)
///     |  | recv -> Err(SurveyExpired)   the deadline passes:      |  |
///     |  |      +---------+   queued responses dropped,           |  | response with the current
///     |  +----- | Expired | <-------- Event::Readable ------------+  | ID: queued (Readable when
///     |         +---------+                                          | the queue was empty)
///     |             | send: a new survey starts (see Running)     ---+
///     +-- recv in Idle: BadState.   recv in Running: the oldest response, or WouldBlock.
/// ```
///
/// **Sending never blocks.** A copy of the survey goes to every attached pipe: written at once
/// to an idle pipe, queued behind a busy one (up to [`SURVEYOR_PIPE_QUEUE_LEN`]), or, when that
/// queue is full, dropped for that pipe alone and counted in [`Surveyor::dropped_surveys`].
/// With no pipe at all the send still succeeds.
///
/// **Expiry.** From the deadline on, no response is delivered: the queue is emptied and the ID
/// retired, whether the deadline is noticed by [`Protocol::handle_timeout`], by an input or by
/// [`Protocol::recv`] (each takes `now`). The first `recv` after that returns
/// [`RecvError::SurveyExpired`] and later ones [`RecvError::BadState`], which is nanomsg's
/// behaviour and NNG's for a receive that was waiting at expiry (a sans-IO core cannot tell
/// whether one was waiting; NNG answers `ESTATE` at once when none was, mangos always does).
///
/// **A new survey** cancels the current one: its queued responses are discarded and later
/// responses to it are dropped. A driver with a receive blocked on the old survey simply goes
/// on waiting for the new one's responses; NNG fails such a receive with `ECANCELED`.
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than RESPONDENT is refused; a pipe that
/// arrives during a survey does not get it), [`Input::PipeRemoved`] (surveys queued for it are
/// lost), [`Input::PipeWritable`] (the oldest survey queued for the pipe goes out),
/// [`Input::Received`] (a response: shorter than 4 bytes kicks the pipe, an ID other than the
/// current survey's is dropped, a response that finds the queue full is dropped).
///
/// **Events.** [`Event::Readable`] when the response queue stops being empty and when the
/// survey expires; [`Event::ClosePipe`] for a wrong peer or a garbage response. Never
/// [`Event::Writable`]: `send` cannot block. Never [`Event::ResumeReceiving`]: pipes are never
/// paused.
///
/// **Timers.** One: the survey deadline, armed by `send` at `now + survey_time`.
///
/// **Counters** ([`Protocol::stats`]): `survey_timeouts` counts every survey whose deadline
/// passed, contexts included. Drops: [`DropReason::SurveyExpired`] for responses unread at the
/// deadline and for responses to a context's last expired survey that arrive later;
/// [`DropReason::StaleReply`] for responses to any other survey that is not running (replaced,
/// closed, unknown) and for unread responses a new survey discards;
/// [`DropReason::RecvQueueFull`] for responses beyond `recv_buffer`;
/// [`DropReason::SendQueueFull`] for survey copies a full pipe queue drops;
/// [`DropReason::PipeClosed`] for copies still queued when their pipe went away, and for
/// copies handed back unsent ([`Input::Unsent`]: a survey copy was that respondent's alone);
/// [`DropReason::ContextClosed`] for responses unread when their context closed;
/// [`DropReason::QueueShrunk`] for responses discarded by [`Protocol::set_recv_buffer`].
#[derive(Debug)]
pub struct Surveyor {
    recv_buffer: usize,
    ids: RequestIdSequence,
    pipes: Broadcast,
    /// The default context holds the socket's survey time, which new contexts inherit.
    contexts: Contexts<SurveyContext>,
    /// The context running each live survey ID.
    by_id: BTreeMap<u32, CtxKey>,
    /// The ID of each context's last expired survey, so that a late response to it counts as
    /// [`DropReason::SurveyExpired`] rather than stale. One per context at most: bounded.
    expired_ids: BTreeSet<u32>,
    timers: DeadlineSet,
    /// Responses dropped; the survey copies' drops are in `pipes`.
    drops: DropCounts,
    survey_timeouts: u64,
}

impl Surveyor {
    /// Creates a SURVEYOR socket core with no pipes and no survey.
    pub fn new(config: SurveyorConfig) -> Self {
        Self {
            recv_buffer: config.recv_buffer.max(1),
            ids: RequestIdSequence::new(config.seed),
            pipes: Broadcast::new(
                ProtocolId::RESPONDENT,
                SURVEYOR_PIPE_QUEUE_LEN,
                Overflow::DropNewest,
            ),
            contexts: Contexts::new(SurveyContext::new(config.survey_time)),
            by_id: BTreeMap::new(),
            expired_ids: BTreeSet::new(),
            timers: DeadlineSet::default(),
            drops: DropCounts::default(),
            survey_timeouts: 0,
        }
    }

    /// Sets how long surveys collect responses, for the socket's own surveys and for contexts
    /// opened later. The running survey keeps its deadline; the new value applies from the
    /// next `send`, as in NNG.
    pub fn set_survey_time(&mut self, survey_time: Duration) {
        self.contexts.default_ctx().survey_time = survey_time;
    }

    /// Returns how long each survey collects responses.
    pub fn survey_time(&self) -> Duration {
        self.contexts.default_ref().survey_time
    }

    /// Sets how long the surveys of context `ctx` collect responses, from its next survey on
    /// (scenario 31, `test_surv_survey_time_option`).
    ///
    /// # Errors
    /// [`ContextError::UnknownContext`] when `ctx` is not open.
    pub fn set_context_survey_time(
        &mut self,
        ctx: ContextId,
        survey_time: Duration,
    ) -> Result<(), ContextError> {
        self.contexts.lookup(ctx)?.survey_time = survey_time;
        Ok(())
    }

    /// Returns how long the surveys of context `ctx` collect responses.
    ///
    /// # Errors
    /// [`ContextError::UnknownContext`] when `ctx` is not open.
    pub fn context_survey_time(&mut self, ctx: ContextId) -> Result<Duration, ContextError> {
        Ok(self.contexts.lookup(ctx)?.survey_time)
    }

    /// Returns the ID of the socket's running survey, if one is collecting responses.
    pub fn survey_id(&self) -> Option<RequestId> {
        self.contexts.default_ref().survey_id()
    }

    /// Returns the ID of context `ctx`'s running survey, if it is open and has one.
    pub fn context_survey_id(&self, ctx: ContextId) -> Option<RequestId> {
        self.contexts
            .get(Some(ctx))
            .and_then(SurveyContext::survey_id)
    }

    /// Returns how many survey copies were dropped because a pipe's queue was full, i.e. how
    /// many times some pipe missed a survey: [`DropReason::SendQueueFull`] in
    /// [`Protocol::stats`].
    pub fn dropped_surveys(&self) -> u64 {
        self.pipes.dropped()
    }

    /// Ends every running survey whose deadline is `<= now`, and queues a readable event for
    /// each so that a receiver waiting for responses learns that none will come; except for
    /// `quiet`, the context whose receive is running right now.
    fn expire_due(&mut self, now: Instant, quiet: Option<CtxKey>) {
        while let Some(key) = self.timers.pop_due(now, live_deadlines(&self.contexts)) {
            let Some(ctx) = self.contexts.get_mut(key) else {
                continue;
            };
            // Only a running survey's deadline is live; it ends here.
            let SurveyState::Running(survey) = &ctx.state else {
                continue;
            };
            let id = survey.id.get();
            let unread = survey.responses.len() as u64;
            self.by_id.remove(&id);
            ctx.state = SurveyState::Expired;
            if let Some(older) = ctx.last_expired.replace(id) {
                self.expired_ids.remove(&older);
            }
            self.expired_ids.insert(id);
            self.survey_timeouts += 1;
            self.drops.add(DropReason::SurveyExpired, unread);
            if quiet != Some(key) {
                self.pipes.push_event(readable(key));
            }
        }
    }

    fn handle_response(&mut self, pipe: PipeId, mut body: Bytes) {
        let Some(id) = read_word(&body) else {
            // NNG kicks a peer whose response has no room for a survey ID.
            self.pipes.kick(pipe);
            return;
        };
        // Responses to older surveys and unknown IDs drop.
        let Some(&key) = self.by_id.get(&id) else {
            let reason = if self.expired_ids.contains(&id) {
                DropReason::SurveyExpired
            } else {
                DropReason::StaleReply
            };
            self.drops.record(reason);
            return;
        };
        // `by_id` only names running surveys of open contexts.
        let Some(SurveyContext {
            state: SurveyState::Running(survey),
            ..
        }) = self.contexts.get_mut(key)
        else {
            self.drops.record(DropReason::StaleReply);
            return;
        };
        // Responses beyond the context's queue drop.
        if survey.responses.len() >= self.recv_buffer {
            self.drops.record(DropReason::RecvQueueFull);
            return;
        }
        body.advance(WORD_LEN);
        survey.responses.push_back((pipe, body));
        if survey.responses.len() == 1 {
            self.pipes.push_event(readable(key));
        }
    }

    /// Cancels context `key`'s survey and broadcasts `body` as its new one.
    fn start_survey(&mut self, key: CtxKey, body: Bytes, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(key) else {
            return;
        };
        if let SurveyState::Running(old) = &ctx.state {
            self.by_id.remove(&old.id.get());
            // Unread responses to the replaced survey are as stale as its late ones.
            let unread = old.responses.len() as u64;
            self.drops.add(DropReason::StaleReply, unread);
        }
        let deadline = deadline_after(now, ctx.survey_time);
        let survey = Survey {
            id: self.ids.next_id(),
            responses: VecDeque::new(),
            deadline,
        };
        let header = Bytes::copy_from_slice(&survey.id.to_bytes());
        self.pipes.send(Message::with_header(header, body), None);
        self.by_id.insert(survey.id.get(), key);
        ctx.state = SurveyState::Running(survey);
        match deadline {
            Some(at) => self.timers.arm(key, at, live_deadlines(&self.contexts)),
            None => self.timers.disarmed(live_deadlines(&self.contexts)),
        }
    }
}

impl Protocol for Surveyor {
    fn drops_when_full(&self) -> bool {
        true
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::SURVEYOR
    }

    /// Applies a pipe input; see the type docs for what each input does. A survey whose
    /// deadline is `<= now` expires first, so a response arriving at or after the deadline is
    /// never queued.
    fn handle(&mut self, input: Input, now: Instant) {
        self.expire_due(now, None);
        if let Some((pipe, body)) = self.pipes.handle(input) {
            self.handle_response(pipe, body);
        }
    }

    /// Expires every running survey whose deadline has passed, and queues a readable event
    /// for each.
    fn handle_timeout(&mut self, now: Instant) {
        self.expire_due(now, None);
    }

    #[inline]
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pipes.poll_transmit()
    }

    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        self.pipes.poll_event()
    }

    #[inline]
    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.is_receiving(pipe)
    }

    /// Cancels the current survey and broadcasts `msg`'s body as a new one.
    ///
    /// The header of `msg` is replaced by the new survey ID. Every attached pipe gets a copy,
    /// or misses this survey if its queue is full, and the deadline is armed at
    /// `now + survey_time`.
    ///
    /// # Errors
    /// Never: a survey with no pipe, or that every pipe misses, still succeeds.
    fn send(&mut self, msg: Message, now: Instant) -> Result<(), SendError> {
        self.start_survey(None, msg.body, now);
        Ok(())
    }

    /// Returns the oldest queued response to the running survey, without its survey ID.
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] while the survey runs with nothing queued;
    /// [`RecvError::SurveyExpired`] once after the survey's deadline (its unread responses are
    /// gone); [`RecvError::BadState`] when no survey was ever sent and after that.
    fn recv(&mut self, now: Instant) -> Result<Message, RecvError> {
        // The caller is receiving right now; no need to wake it.
        self.expire_due(now, Some(None));
        self.contexts.default_ctx().take_response()
    }

    /// Returns true while a response to the running survey is queued, or once the survey's
    /// end is to be reported. A survey whose deadline passed and that no timer has ended yet
    /// reads as before its deadline until the driver's timer fires.
    fn is_readable(&self) -> bool {
        match &self.contexts.default_ref().state {
            SurveyState::Idle => false,
            SurveyState::Running(survey) => !survey.responses.is_empty(),
            SurveyState::Expired => true,
        }
    }

    /// Returns true: a survey is sent whatever the pipes (a pipe with a full queue misses it).
    #[inline]
    fn is_writable(&self) -> bool {
        true
    }

    /// Opens a context with no survey, the socket's survey time and its queue size.
    fn open_context(&mut self, _now: Instant) -> Result<ContextId, ContextError> {
        let survey_time = self.survey_time();
        Ok(self.contexts.open(SurveyContext::new(survey_time)))
    }

    /// Closes `ctx`: its survey ends, its unread responses are dropped (counted as
    /// [`DropReason::ContextClosed`]) and late responses to it are dropped.
    fn close_context(&mut self, ctx: ContextId, _now: Instant) -> Result<(), ContextError> {
        let closed = self
            .contexts
            .close(ctx)
            .ok_or(ContextError::UnknownContext)?;
        if let SurveyState::Running(survey) = closed.state {
            self.by_id.remove(&survey.id.get());
            let unread = survey.responses.len() as u64;
            self.drops.add(DropReason::ContextClosed, unread);
        }
        if let Some(id) = closed.last_expired {
            self.expired_ids.remove(&id);
        }
        self.timers.disarmed(live_deadlines(&self.contexts));
        Ok(())
    }

    /// Starts a new survey on `ctx`, as [`Protocol::send`] does for the socket's own; a
    /// receive waiting on `ctx` fails with [`RecvError::Canceled`].
    ///
    /// # Errors
    /// [`SendError::UnknownContext`] when `ctx` is not open.
    fn send_on(&mut self, ctx: ContextId, msg: Message, now: Instant) -> Result<(), SendError> {
        let state = self
            .contexts
            .lookup(ctx)
            .map_err(|_| SendError::UnknownContext)?;
        if std::mem::take(&mut state.recv_waiting) {
            state.canceled = true;
            self.pipes.push_event(readable(Some(ctx)));
        }
        self.start_survey(Some(ctx), msg.body, now);
        Ok(())
    }

    /// Returns true while `ctx` is open: its send starts a survey with any message.
    fn will_take_on(&self, ctx: ContextId, _msg: &Message) -> bool {
        self.contexts.get(Some(ctx)).is_some()
    }

    /// Returns the oldest queued response to `ctx`'s survey, as [`Protocol::recv`] does.
    ///
    /// # Errors
    /// [`RecvError::UnknownContext`] when `ctx` is not open; [`RecvError::Canceled`] once
    /// when a send replaced the survey a waiting receive waited for; otherwise as
    /// [`Protocol::recv`].
    fn recv_on(&mut self, ctx: ContextId, now: Instant) -> Result<Message, RecvError> {
        self.expire_due(now, Some(Some(ctx)));
        let state = self
            .contexts
            .lookup(ctx)
            .map_err(|_| RecvError::UnknownContext)?;
        if std::mem::take(&mut state.canceled) {
            return Err(RecvError::Canceled);
        }
        let result = state.take_response();
        state.recv_waiting = result == Err(RecvError::WouldBlock);
        result
    }

    fn cancel_recv(&mut self, ctx: ContextId, _now: Instant) {
        if let Ok(state) = self.contexts.lookup(ctx) {
            state.recv_waiting = false;
            state.canceled = false;
        }
    }

    /// Returns the counters (see the type docs). `recv_queued` counts the unread responses of
    /// every running survey, `send_queued` the survey copies waiting for busy pipes.
    fn stats(&self) -> CoreStats {
        let recv_queued = self
            .contexts
            .iter()
            .map(|(_, ctx)| match &ctx.state {
                SurveyState::Running(survey) => survey.responses.len(),
                _ => 0,
            })
            .sum();
        CoreStats {
            survey_timeouts: self.survey_timeouts,
            ..self.pipes.stats(&self.drops, recv_queued)
        }
    }

    /// Returns how many responses each survey may queue.
    fn recv_buffer(&self) -> Option<usize> {
        Some(self.recv_buffer)
    }

    /// Resizes the response queue of every running survey, contexts included, and of surveys
    /// started later. Shrinking drops the newest responses beyond the new length. SURVEYOR
    /// never pauses a pipe, so growing resumes nothing.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
    fn set_recv_buffer(&mut self, len: usize, _now: Instant) -> Result<(), ConfigError> {
        let len = check_queue_len(len)?;
        self.recv_buffer = len;
        let mut shrunk = 0;
        for (_, ctx) in self.contexts.iter_mut() {
            if let SurveyState::Running(survey) = &mut ctx.state {
                shrunk += survey.responses.len().saturating_sub(len);
                survey.responses.truncate(len);
            }
        }
        self.drops.add(DropReason::QueueShrunk, shrunk as u64);
        Ok(())
    }
}

/// Settings for [`Respondent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RespondentConfig {
    /// The most backtrace words (device hops plus the survey ID) an accepted survey may carry.
    /// Default: 8. Valid: 1..=255; [`Respondent::new`] treats 0 as 1.
    pub max_ttl: u8,
    /// How many received surveys may wait for [`Protocol::recv`] before the pipes feeding them
    /// are paused. Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for RespondentConfig {
    fn default() -> Self {
        Self {
            max_ttl: DEFAULT_MAX_TTL,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The cooked RESPONDENT role (SP type 0x63): receives surveys and sends at most one response
/// to each.
///
/// Follows SP-PROTOCOLS.md section 4.6, which makes it REP (section 4.4.3) in every respect:
/// receiving a survey saves its backtrace and pipe; the next send puts that backtrace in front
/// of the response and writes it to that pipe. It never looks at the survey ID; the surveyor
/// does that.
///
/// ```text
///              recv: saves backtrace + pipe
///  +------+ -----------------------------> +-------+ --+ recv: the newer survey
///  | Idle |                                | Saved |   | replaces the saved one
///  +------+ <----------------------------- +-------+ <-+
///     |     send: Ok (dropped if the pipe     |
///     |     is gone)                          | send while the pipe is busy:
///     +--> send: BadState                     +-> WouldBlock, stays Saved
/// ```
///
/// A send with no saved survey, or a second response to one survey, returns
/// [`SendError::BadState`] (`test_resp_send_bad_state`). If the surveyor has gone, the response
/// is dropped and the send succeeds.
///
/// A busy pipe applies back-pressure, as in NNG (where the send waits in the pipe's queue
/// until the send timeout) and mangos without `BEST-EFFORT`: `send` returns
/// [`SendError::WouldBlock`], keeps the survey saved and emits [`Event::Writable`] once the pipe
/// turns idle or goes away. The response is never dropped for a busy pipe.
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than SURVEYOR is refused),
/// [`Input::PipeRemoved`], [`Input::PipeWritable`], [`Input::Received`]: the backtrace is
/// parsed with [`split_backtrace`](crate::backtrace::split_backtrace); more than `max_ttl`
/// words drops the survey and keeps the pipe (`test_resp_ttl_drop`), a body that ends before
/// the bottom word kicks the pipe (`test_resp_recv_garbage`).
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ResumeReceiving`] for paused pipes once the queue drains to half of `recv_buffer`;
/// [`Event::Writable`] when the saved survey's pipe turns idle or goes away;
/// [`Event::ClosePipe`] for a wrong peer or a garbage survey.
///
/// **Counters** ([`Protocol::stats`]): as REP's, with [`DropReason::PipeClosed`] for a
/// response its dying pipe handed back unsent ([`Input::Unsent`]).
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Respondent {
    inner: CookedReplier,
}

impl Respondent {
    /// Creates a RESPONDENT socket core with no pipes.
    pub fn new(config: RespondentConfig) -> Self {
        let inner = CookedReplier::new(ProtocolId::RESPONDENT, config.max_ttl, config.recv_buffer);
        Self { inner }
    }

    /// Sets the most backtrace words an accepted survey may carry.
    ///
    /// # Errors
    /// [`ConfigError::MaxTtlOutOfRange`] for 0.
    pub fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
        self.inner.set_max_ttl(max_ttl)
    }

    /// Returns the most backtrace words an accepted survey may carry.
    pub fn max_ttl(&self) -> u8 {
        self.inner.max_ttl()
    }

    /// Returns true when a received survey is waiting for its response.
    pub fn has_saved_survey(&self) -> bool {
        self.inner.has_saved()
    }
}

impl Protocol for Respondent {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    forward_to_cooked_replier!();
}

/// Settings for [`XSurveyor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XSurveyorConfig {
    /// How many received responses may wait for [`Protocol::recv`] before the pipes feeding
    /// them are paused. Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for XSurveyorConfig {
    fn default() -> Self {
        Self {
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The raw SURVEYOR role (XSURVEYOR, SP type 0x62): broadcasts messages with the header the
/// application gives and hands every response up with its backtrace in the header.
///
/// Follows SP-PROTOCOLS.md section 5.1 (NNG's `xsurv0`). It keeps no survey state, no IDs and
/// no deadline; that is the application's (or the device's) business.
///
/// ```text
///  +-------+  send: header + body as given, a copy to every pipe (never blocks)
///  | Ready | ---+
///  +-------+ <--+  Received: backtrace words -> header, queued for recv
/// ```
///
/// * **Send.** `msg.header` and `msg.body` go out unchanged, back to back, to every attached
///   pipe: at once to an idle pipe, else into its queue of [`XSURVEYOR_PIPE_QUEUE_LEN`], else
///   dropped for that pipe and counted ([`XSurveyor::dropped_sends`]).
/// * **Receive.** The words up to and including the first one with bit 31 set move from the
///   body into the header, as in NNG (mangos moves only the first word; the wire is the same).
///   A body that ends first kicks the pipe. Responses are not TTL-checked.
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than RESPONDENT is refused),
/// [`Input::PipeRemoved`], [`Input::PipeWritable`], [`Input::Received`].
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ResumeReceiving`] once it drains to half of `recv_buffer`; [`Event::ClosePipe`] for a
/// wrong peer or garbage.
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::SendQueueFull`] per copy a full pipe
/// queue drops, [`DropReason::PipeClosed`] for copies still queued when their pipe went away
/// or handed back unsent ([`Input::Unsent`]), [`DropReason::TtlExceeded`] for a response whose stack is deeper than any TTL allows (more
/// than 255 words), [`DropReason::QueueShrunk`] for responses discarded by
/// [`Protocol::set_recv_buffer`].
///
/// **Timers.** None.
#[derive(Debug)]
pub struct XSurveyor {
    core: BacktraceCore,
}

impl XSurveyor {
    /// Creates an XSURVEYOR socket core with no pipes.
    pub fn new(config: XSurveyorConfig) -> Self {
        Self {
            core: BacktraceCore::new(
                ProtocolId::RESPONDENT,
                XSURVEYOR_MAX_STACK,
                config.recv_buffer,
                XSURVEYOR_PIPE_QUEUE_LEN,
            ),
        }
    }

    /// Returns how many message copies were dropped because a pipe's queue was full:
    /// [`DropReason::SendQueueFull`] in [`Protocol::stats`].
    pub fn dropped_sends(&self) -> u64 {
        self.core.pipes.dropped()
    }
}

impl Protocol for XSurveyor {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::SURVEYOR
    }

    fn is_raw(&self) -> bool {
        true
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        self.core.handle(input, None);
    }

    forward_to_core!();
    forward_queue_to_core!();

    /// Returns true: this send never waits.
    #[inline]
    fn is_writable(&self) -> bool {
        true
    }

    /// Broadcasts `msg`, header and body unchanged, to every attached pipe ([`Message::pipe`]
    /// is ignored).
    ///
    /// # Errors
    /// Never: a pipe whose queue is full misses the message.
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        self.core.pipes.send(msg.with_pipe(None), None);
        Ok(())
    }

    /// Takes the oldest response, its backtrace (through the bottom word) in the header and
    /// [`Message::pipe`] naming the pipe it came from.
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let (pipe, backtrace, body) = self.core.pop().ok_or(RecvError::WouldBlock)?;
        Ok(Message::with_header(backtrace, body).with_pipe(pipe))
    }
}

/// Settings for [`XRespondent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XRespondentConfig {
    /// The most backtrace words (device hops plus the survey ID) an accepted survey may carry,
    /// not counting the pipe word this socket adds. Default: 8. Valid: 1..=255;
    /// [`XRespondent::new`] treats 0 as 1.
    pub max_ttl: u8,
    /// How many received surveys may wait for [`Protocol::recv`] before the pipes feeding them
    /// are paused. Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for XRespondentConfig {
    fn default() -> Self {
        Self {
            max_ttl: DEFAULT_MAX_TTL,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The raw RESPONDENT role (XRESPONDENT, SP type 0x63): the surveyor-facing side of a device,
/// which records each survey's pipe in its header and routes responses by it.
///
/// Follows SP-PROTOCOLS.md sections 5.1 and 5.3 (NNG's `xresp0`, the same rules as XREP).
///
/// ```text
///  +-------+  Received on pipe P: header = [P] + backtrace, queued for recv (TTL checked)
///  | Ready | ---+
///  +-------+ <--+  send: pop the first header word as the pipe; the rest goes out (never
///                  blocks; an unknown pipe or a missing header drops the message)
/// ```
///
/// * **Receive.** The backtrace is parsed as RESPONDENT does: more than `max_ttl` words (the
///   pipe word not counted) drops the survey and keeps the pipe; a body that ends before the
///   bottom word kicks the pipe. The ID of the pipe it arrived on is then pushed in front, so
///   the header holds `[pipe, hops..., survey ID]`.
/// * **Send.** The first header word names the pipe and is removed; the rest of the header
///   and the body are sent there. A header shorter than 4 bytes or a word that is not a pipe
///   ID drops the message as [`DropReason::MalformedHeader`], an unknown pipe as
///   [`DropReason::NoRoute`], and the send succeeds. A busy pipe queues up to
///   [`XRESPONDENT_PIPE_QUEUE_LEN`] messages and then drops ([`DropReason::SendQueueFull`],
///   [`XRespondent::dropped_sends`]), so one slow surveyor never holds up the others.
///
/// **Counters** ([`Protocol::stats`]): those above, [`DropReason::TtlExceeded`] for a survey
/// over `max_ttl`, [`DropReason::PipeClosed`] for responses still queued when their pipe went
/// away or handed back unsent ([`Input::Unsent`]) and [`DropReason::QueueShrunk`] for surveys discarded by
/// [`Protocol::set_recv_buffer`].
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than SURVEYOR is refused),
/// [`Input::PipeRemoved`], [`Input::PipeWritable`], [`Input::Received`].
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ResumeReceiving`] once it drains to half of `recv_buffer`; [`Event::ClosePipe`] for a
/// wrong peer or garbage.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct XRespondent {
    core: BacktraceCore,
}

impl XRespondent {
    /// Creates an XRESPONDENT socket core with no pipes.
    pub fn new(config: XRespondentConfig) -> Self {
        Self {
            core: BacktraceCore::new(
                ProtocolId::SURVEYOR,
                config.max_ttl,
                config.recv_buffer,
                XRESPONDENT_PIPE_QUEUE_LEN,
            ),
        }
    }
}

crate::protocol::shared::raw_replier!(XRespondent, ProtocolId::RESPONDENT, "survey", "response");

/// The per-survey state of one SURVEYOR context (the socket's own, or an opened one).
#[derive(Debug)]
struct SurveyContext {
    state: SurveyState,
    survey_time: Duration,
    /// A receive on this context returned `WouldBlock` and has not finished or given up.
    recv_waiting: bool,
    /// A send canceled the survey a waiting receive waited for; the next receive says so.
    canceled: bool,
    /// The ID of this context's last survey that expired (kept in [`Surveyor`]'s
    /// `expired_ids` until a newer one expires or the context closes).
    last_expired: Option<u32>,
}

impl SurveyContext {
    fn new(survey_time: Duration) -> Self {
        Self {
            state: SurveyState::Idle,
            survey_time,
            recv_waiting: false,
            canceled: false,
            last_expired: None,
        }
    }

    fn survey_id(&self) -> Option<RequestId> {
        match &self.state {
            SurveyState::Running(survey) => Some(survey.id),
            _ => None,
        }
    }

    /// Takes the oldest response; see [`Protocol::recv`].
    fn take_response(&mut self) -> Result<Message, RecvError> {
        match &mut self.state {
            SurveyState::Idle => Err(RecvError::BadState),
            SurveyState::Running(survey) => survey
                .responses
                .pop_front()
                .map(|(pipe, body)| Message::new(body).with_pipe(pipe))
                .ok_or(RecvError::WouldBlock),
            SurveyState::Expired => {
                self.state = SurveyState::Idle;
                Err(RecvError::SurveyExpired)
            }
        }
    }
}

#[derive(Debug, Default)]
enum SurveyState {
    /// No survey sent, or the end of the last one was reported.
    #[default]
    Idle,
    /// A survey collects responses until its deadline.
    Running(Survey),
    /// The survey's deadline passed; the next `recv` reports it.
    Expired,
}

#[derive(Debug)]
struct Survey {
    id: RequestId,
    /// Responses (their pipe, and the body with the survey ID stripped) in arrival order.
    responses: VecDeque<(PipeId, Bytes)>,
    /// When it ends, armed in the socket's [`DeadlineSet`]; `None` for a deadline too far
    /// out to represent (it never ends on a timer).
    deadline: Option<Instant>,
}

/// Whether `at` is still context `key`'s survey deadline: the [`DeadlineSet`] check of
/// SURVEYOR.
fn live_deadlines(contexts: &Contexts<SurveyContext>) -> impl Fn(CtxKey, Instant) -> bool + '_ {
    move |key, at| {
        matches!(
            contexts.get(key),
            Some(SurveyContext { state: SurveyState::Running(survey), .. })
                if survey.deadline == Some(at)
        )
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::PipeCloseReason;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    fn drain_tx(proto: &mut impl Protocol) -> Vec<Transmit> {
        std::iter::from_fn(|| proto.poll_transmit()).collect()
    }

    fn drain_ev(proto: &mut impl Protocol) -> Vec<Event> {
        std::iter::from_fn(|| proto.poll_event()).collect()
    }

    fn add(proto: &mut impl Protocol, pipe: PipeId, now: Instant) {
        let peer = proto.peer_protocol();
        proto.handle(Input::PipeAdded { pipe, peer }, now);
    }

    fn received(pipe: PipeId, wire: &'static [u8]) -> Input {
        let msg = Message::new(wire);
        Input::Received { pipe, msg }
    }

    fn answer(tx: &Transmit, body: &'static [u8]) -> Input {
        let msg = Message::with_header(tx.msg.header.clone(), body);
        Input::Received { pipe: tx.pipe, msg }
    }

    fn surveyor(survey_time: Duration) -> Surveyor {
        Surveyor::new(SurveyorConfig {
            survey_time,
            seed: 7,
            ..SurveyorConfig::default()
        })
    }

    #[test]
    fn surveyor_broadcasts_one_id_to_every_pipe() {
        let now = Instant::now();
        let mut surv = surveyor(DEFAULT_SURVEY_TIME);
        for n in [2, 1] {
            add(&mut surv, p(n), now);
        }
        surv.send(Message::new("q"), now).unwrap();
        let tx = drain_tx(&mut surv);
        let id = RequestIdSequence::new(7).next_id();
        assert_eq!(surv.survey_id(), Some(id));
        assert_eq!(tx.len(), 2);
        assert_eq!((tx[0].pipe, tx[1].pipe), (p(1), p(2)));
        assert!(tx.iter().all(|t| t.msg.header[..] == id.to_bytes()));
        assert_eq!(surv.poll_timeout(), Some(now + DEFAULT_SURVEY_TIME));
    }

    #[test]
    fn surveyor_queues_eight_surveys_per_busy_pipe_then_drops() {
        let now = Instant::now();
        let mut surv = surveyor(DEFAULT_SURVEY_TIME);
        add(&mut surv, p(1), now);
        for _ in 0..20 {
            surv.send(Message::new("q"), now).unwrap();
        }
        assert_eq!(drain_tx(&mut surv).len(), 1);
        assert_eq!(
            surv.dropped_surveys(),
            20 - 1 - SURVEYOR_PIPE_QUEUE_LEN as u64
        );
        surv.handle(Input::PipeWritable { pipe: p(1) }, now);
        assert_eq!(drain_tx(&mut surv).len(), 1, "the oldest queued survey");
    }

    #[test]
    fn surveyor_delivers_current_responses_and_drops_stale_ones() {
        let now = Instant::now();
        let mut surv = surveyor(DEFAULT_SURVEY_TIME);
        add(&mut surv, p(1), now);
        surv.send(Message::new("old"), now).unwrap();
        let old = drain_tx(&mut surv).remove(0);
        surv.handle(Input::PipeWritable { pipe: p(1) }, now);
        surv.send(Message::new("new"), now).unwrap();
        let new = drain_tx(&mut surv).remove(0);
        assert_eq!(surv.recv(now), Err(RecvError::WouldBlock));

        surv.handle(answer(&old, b"stale"), now);
        assert!(drain_ev(&mut surv).is_empty());
        surv.handle(answer(&new, b"fresh"), now);
        assert_eq!(drain_ev(&mut surv), vec![Event::Readable]);
        assert_eq!(
            surv.recv(now),
            Ok(Message::new("fresh").with_pipe(new.pipe))
        );
        assert_eq!(surv.recv(now), Err(RecvError::WouldBlock));
    }

    #[test]
    fn surveyor_expiry_discards_queue_then_reports_once() {
        let now = Instant::now();
        let later = now + Duration::from_millis(50);
        let mut surv = surveyor(Duration::from_millis(50));
        assert_eq!(surv.recv(now), Err(RecvError::BadState));
        add(&mut surv, p(1), now);
        surv.send(Message::new("q"), now).unwrap();
        let tx = drain_tx(&mut surv).remove(0);
        surv.handle(answer(&tx, b"unread"), now);
        drain_ev(&mut surv);

        surv.handle_timeout(later - Duration::from_millis(1));
        assert!(drain_ev(&mut surv).is_empty(), "early timeout does nothing");
        surv.handle_timeout(later);
        assert_eq!(drain_ev(&mut surv), vec![Event::Readable]);
        assert_eq!(surv.poll_timeout(), None);
        surv.handle(answer(&tx, b"late"), later);
        assert!(drain_ev(&mut surv).is_empty());
        assert_eq!(surv.recv(later), Err(RecvError::SurveyExpired));
        assert_eq!(surv.recv(later), Err(RecvError::BadState));
    }

    #[test]
    fn surveyor_recv_at_deadline_expires_without_a_timer_call() {
        let now = Instant::now();
        let mut surv = surveyor(Duration::from_millis(10));
        add(&mut surv, p(1), now);
        surv.send(Message::new("q"), now).unwrap();
        let tx = drain_tx(&mut surv).remove(0);
        surv.handle(answer(&tx, b"r"), now);
        let deadline = now + Duration::from_millis(10);
        assert_eq!(surv.recv(deadline), Err(RecvError::SurveyExpired));
        assert_eq!(surv.survey_id(), None);
    }

    #[test]
    fn surveyor_zero_survey_time_expires_at_once() {
        let now = Instant::now();
        let mut surv = surveyor(Duration::ZERO);
        add(&mut surv, p(1), now);
        surv.send(Message::new("q"), now).unwrap();
        let tx = drain_tx(&mut surv).remove(0);
        surv.handle(answer(&tx, b"r"), now);
        assert_eq!(surv.recv(now), Err(RecvError::SurveyExpired));
    }

    #[test]
    fn surveyor_drops_responses_beyond_recv_buffer() {
        let now = Instant::now();
        let mut surv = Surveyor::new(SurveyorConfig {
            recv_buffer: 2,
            ..SurveyorConfig::default()
        });
        add(&mut surv, p(1), now);
        surv.send(Message::new("q"), now).unwrap();
        let tx = drain_tx(&mut surv).remove(0);
        for body in [&b"1"[..], b"2", b"3"] {
            surv.handle(answer(&tx, body), now);
        }
        assert!(surv.is_receiving(p(1)), "the surveyor never pauses a pipe");
        assert_eq!(surv.recv(now).unwrap().body, "1");
        assert_eq!(surv.recv(now).unwrap().body, "2");
        assert_eq!(surv.recv(now), Err(RecvError::WouldBlock));
    }

    #[test]
    fn surveyor_kicks_short_response() {
        let now = Instant::now();
        let mut surv = surveyor(DEFAULT_SURVEY_TIME);
        add(&mut surv, p(1), now);
        surv.handle(received(p(1), b"\x80\x00"), now);
        let reason = PipeCloseReason::MalformedHeader;
        assert_eq!(
            drain_ev(&mut surv),
            vec![Event::ClosePipe { pipe: p(1), reason }]
        );
        assert!(!surv.is_receiving(p(1)));
        surv.send(Message::new("q"), now).unwrap();
        assert!(
            drain_tx(&mut surv).is_empty(),
            "the kicked pipe is forgotten"
        );
    }

    #[test]
    fn respondent_returns_backtrace_and_answers_once() {
        let now = Instant::now();
        let mut resp = Respondent::new(RespondentConfig::default());
        assert_eq!(resp.send(Message::new("x"), now), Err(SendError::BadState));
        add(&mut resp, p(7), now);
        resp.handle(received(p(7), b"\x00\x00\x01\x2b\x80\x00\x03\x37Hi"), now);
        assert_eq!(drain_ev(&mut resp), vec![Event::Readable]);
        assert_eq!(resp.recv(now), Ok(Message::new("Hi").with_pipe(p(7))));
        assert!(resp.has_saved_survey());
        resp.send(Message::new("Yo"), now).unwrap();
        let tx = drain_tx(&mut resp);
        assert_eq!(tx[0].pipe, p(7));
        assert_eq!(
            tx[0].msg.to_contiguous(),
            &b"\x00\x00\x01\x2b\x80\x00\x03\x37Yo"[..]
        );
        assert_eq!(resp.send(Message::new("x"), now), Err(SendError::BadState));
    }

    #[test]
    fn respondent_busy_pipe_blocks_and_wakes() {
        let now = Instant::now();
        let mut resp = Respondent::new(RespondentConfig::default());
        add(&mut resp, p(1), now);
        for _ in 0..2 {
            resp.handle(received(p(1), b"\x80\x00\x00\x01s"), now);
        }
        resp.recv(now).unwrap();
        resp.send(Message::new("1"), now).unwrap();
        resp.recv(now).unwrap();
        drain_ev(&mut resp);
        assert_eq!(
            resp.send(Message::new("2"), now),
            Err(SendError::WouldBlock)
        );
        assert!(resp.has_saved_survey());
        resp.handle(Input::PipeWritable { pipe: p(1) }, now);
        assert_eq!(drain_ev(&mut resp), vec![Event::Writable]);
        resp.send(Message::new("2"), now).unwrap();
        assert_eq!(drain_tx(&mut resp).len(), 2);
    }

    #[test]
    fn respondent_max_ttl_rejects_zero() {
        let mut resp = Respondent::new(RespondentConfig::default());
        assert_eq!(resp.set_max_ttl(0), Err(ConfigError::MaxTtlOutOfRange(0)));
        assert_eq!(resp.max_ttl(), DEFAULT_MAX_TTL);
        resp.set_max_ttl(3).unwrap();
        assert_eq!(resp.max_ttl(), 3);
    }

    #[test]
    fn xrespondent_pushes_pipe_word_and_routes_by_it() {
        let now = Instant::now();
        let mut x = XRespondent::new(XRespondentConfig::default());
        add(&mut x, p(0x12b), now);
        x.handle(received(p(0x12b), b"\x80\x00\x03\x37Hello"), now);
        let msg = x.recv(now).unwrap();
        assert_eq!(msg.header, &b"\x00\x00\x01\x2b\x80\x00\x03\x37"[..]);
        assert_eq!(msg.body, "Hello");
        x.send(Message::with_header(msg.header, "World"), now)
            .unwrap();
        let tx = drain_tx(&mut x);
        assert_eq!(tx[0].pipe, p(0x12b));
        assert_eq!(tx[0].msg.to_contiguous(), &b"\x80\x00\x03\x37World"[..]);
    }

    #[test]
    fn xrespondent_drops_unroutable_sends() {
        let now = Instant::now();
        let mut x = XRespondent::new(XRespondentConfig::default());
        add(&mut x, p(1), now);
        for header in [
            &b""[..],
            b"\x00\x01",
            b"\x00\x00\x00\x02",
            b"\x80\x00\x00\x01",
        ] {
            assert_eq!(x.send(Message::with_header(header, "x"), now), Ok(()));
        }
        assert!(drain_tx(&mut x).is_empty());
        assert_eq!(x.dropped_sends(), 0, "only full queues count");
    }

    #[test]
    fn xrespondent_queues_two_per_busy_pipe() {
        let now = Instant::now();
        let mut x = XRespondent::new(XRespondentConfig::default());
        add(&mut x, p(1), now);
        for _ in 0..5 {
            let msg = Message::with_header(&b"\x00\x00\x00\x01\x80\x00\x00\x01"[..], "r");
            x.send(msg, now).unwrap();
        }
        assert_eq!(drain_tx(&mut x).len(), 1);
        assert_eq!(x.dropped_sends(), 5 - 1 - XRESPONDENT_PIPE_QUEUE_LEN as u64);
    }

    #[test]
    fn xsurveyor_sends_header_as_given_and_keeps_reply_stack() {
        let now = Instant::now();
        let mut x = XSurveyor::new(XSurveyorConfig::default());
        add(&mut x, p(1), now);
        add(&mut x, p(2), now);
        let header = Bytes::from_static(b"\x00\x00\x00\x09\x80\x00\x00\x05");
        x.send(Message::with_header(header.clone(), "q"), now)
            .unwrap();
        let tx = drain_tx(&mut x);
        assert_eq!(tx.len(), 2);
        assert!(tx.iter().all(|t| t.msg.header == header));
        // NNG test_xsurvey_recv_header-style: the whole stack moves into the header.
        x.handle(
            received(p(1), b"\x00\x00\x00\x02\x00\x00\x00\x01\x80\x00\x01\x23r"),
            now,
        );
        let got = x.recv(now).unwrap();
        assert_eq!(got.header.len(), 12);
        assert_eq!(got.body, "r");
    }
}
