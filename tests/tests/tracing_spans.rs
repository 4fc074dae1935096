//! Tracing spans of the application surface, on every adapter: a named socket's span carries
//! its protocol and name; its listeners' and dialers' spans (children of it) carry their URL;
//! each pipe's span (a child of its endpoint's) carries the pipe's ID and peer address; and
//! the pipe's log lines ("pipe attached", "pipe closed by the application") are inside it.
//!
//! The driver logs from runtime threads (tokio workers, smol's executor, sp-blocking's
//! threads), so a thread-local default subscriber would miss most of it: this binary installs
//! a capturing subscriber as the global default, which is why it is a test binary of its own.
//! Tests run in parallel, so each one finds its own spans by its socket's unique name.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use sp_core::protocol::pipeline::{Pull as PullCore, Push as PushCore};
use sp_core::ProtocolId;
use sp_tests::harness::{run_smol, tokio_runtime, wait_for, with_limit, EventsWithin};
use sp_transport::rt::Runtime;
use sp_transport::{Address, DetachReason, PipeEvent, PipeId};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// How long a call or an event that must happen may take.
const T: Duration = Duration::from_secs(5);
/// The most any one test body may take.
const LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The capturing subscriber

/// One span, as created (plus fields recorded later).
#[derive(Clone, Debug)]
struct SpanRec {
    name: &'static str,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
}

/// One event, with the span it happened in.
#[derive(Clone, Debug)]
struct EventRec {
    message: String,
    span: Option<usize>,
    fields: BTreeMap<String, String>,
}

/// Everything captured so far. Spans are indexed by their own counter: the registry reuses
/// span IDs once a span closes, these indexes never.
#[derive(Default)]
struct Captured {
    spans: Vec<SpanRec>,
    events: Vec<EventRec>,
}

static CAPTURED: Mutex<Captured> = Mutex::new(Captured {
    spans: Vec::new(),
    events: Vec::new(),
});

fn captured() -> MutexGuard<'static, Captured> {
    CAPTURED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The capture index of a live span, kept in its registry extensions.
struct Uid(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

struct Capture;

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Uid>().map(|u| u.0));
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let uid = {
            let mut cap = captured();
            cap.spans.push(SpanRec {
                name: attrs.metadata().name(),
                parent,
                fields,
            });
            cap.spans.len() - 1
        };
        span.extensions_mut().insert(Uid(uid));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(uid) = span.extensions().get::<Uid>().map(|u| u.0) else {
            return;
        };
        let mut cap = captured();
        values.record(&mut Fields(&mut cap.spans[uid].fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let span = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<Uid>().map(|u| u.0));
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        captured().events.push(EventRec {
            message,
            span,
            fields,
        });
    }
}

/// Installs the capturing subscriber as the global default, once per process.
fn install_capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
            .expect("no other global subscriber in this test binary");
    });
}

// ---------------------------------------------------------------------------------------------
// Checking the tree

/// What one scenario leaves to check: the name of the listening (PULL) socket and of the
/// dialing (PUSH) socket, the listener's URLs, and the pipe that was closed.
struct Expect {
    pull_name: String,
    push_name: String,
    listen_url: String,
    bound: Address,
    /// The PULL side's pipe that the application closed, and its peer (the PUSH's address).
    closed_pipe: PipeId,
    closed_peer: Address,
    /// The PUSH side's pipe.
    push_pipe: PipeId,
}

/// Returns whether `span` has `ancestor` among its parents (or is it).
fn descends_from(cap: &Captured, mut span: usize, ancestor: usize) -> bool {
    loop {
        if span == ancestor {
            return true;
        }
        match cap.spans[span].parent {
            Some(p) => span = p,
            None => return false,
        }
    }
}

fn field<'a>(s: &'a SpanRec, name: &str) -> &'a str {
    s.fields
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("span {:?} has no field {name}: {s:?}", s.name))
}

/// The one "socket" span named `name`.
fn socket_span(cap: &Captured, name: &str) -> usize {
    let found: Vec<usize> = (0..cap.spans.len())
        .filter(|&i| {
            cap.spans[i].name == "socket"
                && cap.spans[i].fields.get("name").map(String::as_str) == Some(name)
        })
        .collect();
    assert_eq!(found.len(), 1, "one socket span named {name:?}: {found:?}");
    found[0]
}

/// The children of `parent` called `name`.
fn children(cap: &Captured, parent: usize, name: &str) -> Vec<usize> {
    (0..cap.spans.len())
        .filter(|&i| cap.spans[i].name == name && cap.spans[i].parent == Some(parent))
        .collect()
}

/// The events with `message` inside `span` itself.
fn events_in(cap: &Captured, span: usize, message: &str) -> usize {
    cap.events
        .iter()
        .filter(|e| e.span == Some(span) && e.message == message)
        .count()
}

/// The "socket" span named `name`, checked to carry `protocol`, and its one child span of
/// kind `endpoint` ("listener" or "dialer"), checked to carry `url`.
fn socket_and_endpoint(
    cap: &Captured,
    name: &str,
    protocol: ProtocolId,
    endpoint: &str,
    url: &str,
) -> (usize, usize) {
    let socket = socket_span(cap, name);
    assert_eq!(field(&cap.spans[socket], "protocol"), protocol.to_string());
    let endpoints = children(cap, socket, endpoint);
    assert_eq!(endpoints.len(), 1, "one {endpoint} span under the socket");
    let ep = endpoints[0];
    assert_eq!(field(&cap.spans[ep], "url"), url);
    (socket, ep)
}

fn check_tree(x: &Expect) {
    let cap = captured();

    // PULL: socket -> listener -> pipe.
    let (pull, listener) = socket_and_endpoint(
        &cap,
        &x.pull_name,
        ProtocolId::PULL,
        "listener",
        &x.listen_url,
    );
    assert!(cap.spans[listener].fields.contains_key("id"));
    let listening: Vec<&EventRec> = cap
        .events
        .iter()
        .filter(|e| e.span == Some(listener) && e.message == "listening")
        .collect();
    assert_eq!(listening.len(), 1, "the listener logs where it listens");
    assert_eq!(
        listening[0].fields.get("address"),
        Some(&x.bound.to_string())
    );

    let pipes = children(&cap, listener, "pipe");
    assert_eq!(pipes.len(), 1, "one pipe span under the listener");
    let pipe = pipes[0];
    assert_eq!(field(&cap.spans[pipe], "id"), x.closed_pipe.to_string());
    assert_eq!(field(&cap.spans[pipe], "peer"), x.closed_peer.to_string());
    assert_eq!(
        events_in(&cap, pipe, "pipe attached"),
        1,
        "\"pipe attached\" is logged inside the pipe's span"
    );
    assert!(descends_from(&cap, pipe, pull));
    assert_eq!(events_in(&cap, pipe, "pipe closed by the application"), 1);
    // Every "pipe attached" of this socket is inside a pipe span under it.
    for e in cap.events.iter().filter(|e| e.message == "pipe attached") {
        let span = e.span.expect("\"pipe attached\" happens inside a span");
        assert_eq!(cap.spans[span].name, "pipe", "{e:?}");
    }

    // PUSH: socket -> dialer -> pipe.
    let (push, dialer) = socket_and_endpoint(
        &cap,
        &x.push_name,
        ProtocolId::PUSH,
        "dialer",
        &x.bound.to_string(),
    );
    let pipes = children(&cap, dialer, "pipe");
    assert!(!pipes.is_empty(), "a pipe span under the dialer");
    let first = pipes[0];
    assert_eq!(field(&cap.spans[first], "id"), x.push_pipe.to_string());
    assert_eq!(field(&cap.spans[first], "peer"), x.bound.to_string());
    assert_eq!(events_in(&cap, first, "pipe attached"), 1);
    assert!(descends_from(&cap, first, push));
}

// ---------------------------------------------------------------------------------------------
// The scenario, per adapter

/// The scenario on an async adapter.
async fn async_scenario<R: Runtime + Default>(tag: &str) -> Expect {
    type S<R, P> = sp_transport::Socket<R, P>;
    let pull_name = format!("spans-{tag}-pull");
    let push_name = format!("spans-{tag}-push");
    let listen_url = "tcp://127.0.0.1:0".to_string();

    let pull = S::<R, PullCore>::new();
    pull.set_recv_timeout(Some(T));
    pull.set_name(pull_name.as_str()).expect("name");
    let mut events = pull.pipe_events();
    let l = pull.listen(listen_url.as_str()).await.expect("listen");
    let push = S::<R, PushCore>::new();
    push.set_options(
        sp_transport::SocketOptions::builder()
            .name(push_name.as_str())
            .send_timeout(T)
            .reconnect(Duration::from_secs(30), Duration::ZERO)
            .build()
            .expect("options"),
    )
    .expect("set_options");
    push.dial(&l).await.expect("dial");
    push.send("traced").await.expect("send");
    let m = pull.recv().await.expect("recv");
    assert_eq!(&m.body[..], b"traced");
    let pipe = loop {
        let e = events.within(T).await.expect("the pipe attaches");
        if let PipeEvent::Attached(p) = e {
            break p;
        }
    };
    let push_pipe = push.pipes()[0].id();
    pipe.close();
    let e = events.within(T).await.expect("the pipe detaches");
    match e {
        PipeEvent::Detached { reason, .. } => assert_eq!(reason, DetachReason::Local),
        other => panic!("expected Detached, got {other:?}"),
    }
    wait_for("the PUSH to lose its pipe", T, || push.pipe_count() == 0).await;
    Expect {
        pull_name,
        push_name,
        listen_url,
        bound: l.address(),
        closed_pipe: pipe.id(),
        closed_peer: pipe.remote_addr().expect("a tcp peer").clone(),
        push_pipe,
    }
}

/// The scenario on sp-blocking.
fn blocking_scenario() -> Expect {
    let pull_name = "spans-blocking-pull".to_string();
    let push_name = "spans-blocking-push".to_string();
    let listen_url = "tcp://127.0.0.1:0".to_string();

    let pull = sp_blocking::Pull::new();
    pull.set_recv_timeout(Some(T));
    pull.set_name(pull_name.as_str()).expect("name");
    let mut events = pull.pipe_events();
    let l = pull.listen(listen_url.as_str()).expect("listen");
    let push = sp_blocking::Push::new();
    push.set_name(push_name.as_str()).expect("name");
    push.set_send_timeout(Some(T));
    push.set_reconnect_backoff(Duration::from_secs(30), Duration::ZERO);
    push.dial(&l).expect("dial");
    push.send("traced").expect("send");
    let m = pull.recv().expect("recv");
    assert_eq!(&m.body[..], b"traced");
    let pipe = loop {
        match events.recv_until(Instant::now() + T) {
            Some(PipeEvent::Attached(p)) => break p,
            Some(_) => {}
            None => panic!("the pipe attaches"),
        }
    };
    let push_pipe = push.pipes()[0].id();
    pipe.close();
    match events.recv_until(Instant::now() + T) {
        Some(PipeEvent::Detached { reason, .. }) => assert_eq!(reason, DetachReason::Local),
        other => panic!("expected Detached, got {other:?}"),
    }
    let end = Instant::now() + T;
    while push.pipe_count() != 0 {
        assert!(Instant::now() < end, "the PUSH keeps its pipe");
        std::thread::sleep(Duration::from_millis(2));
    }
    Expect {
        pull_name,
        push_name,
        listen_url,
        bound: l.address(),
        closed_pipe: pipe.id(),
        closed_peer: pipe.remote_addr().expect("a tcp peer").clone(),
        push_pipe,
    }
}

#[test]
fn tokio_spans_nest_socket_endpoint_pipe() {
    install_capture();
    let rt = tokio_runtime();
    let x = rt.block_on(with_limit(
        LIMIT,
        async_scenario::<sp_tokio::Tokio>("tokio"),
    ));
    check_tree(&x);
}

#[test]
fn smol_spans_nest_socket_endpoint_pipe() {
    install_capture();
    let x = run_smol(with_limit(LIMIT, async_scenario::<sp_smol::Smol>("smol")));
    check_tree(&x);
}

#[test]
fn blocking_spans_nest_socket_endpoint_pipe() {
    install_capture();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(blocking_scenario());
    });
    let x = rx
        .recv_timeout(LIMIT)
        .expect("the blocking scenario finishes in time");
    check_tree(&x);
}
