//! One clock: under tokio's paused clock every timer of a socket runs in virtual time, the
//! protocol cores included (receive timeouts, dialer back-off, REQ resends, survey deadlines).
//! Each test waits tens of virtual seconds and finishes in milliseconds of real time.

use std::time::Duration;

use sp_tokio::{Error, Pull, Rep, Req, Surveyor};

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(start_paused = true)]
async fn recv_timeout_fires_in_virtual_time_while_a_dialer_backs_off() {
    let pull = Pull::new();
    let dialer = pull
        .dial_nonblocking(format!("tcp://127.0.0.1:{}", closed_port()))
        .unwrap();
    pull.set_recv_timeout(Some(Duration::from_secs(30)));
    let start = tokio::time::Instant::now();
    let err = pull.recv().await.unwrap_err();
    assert!(matches!(err, Error::TimedOut), "{err:?}");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(30), "{waited:?}");
    assert!(waited < Duration::from_secs(31), "{waited:?}");
    // The dialer kept retrying on the same clock, with back-off (100 ms doubling to 2 s, each
    // delay drawn from [t/2, t]): 5 attempts in the first 1.6-3.1 s, then one every 1-2 s.
    let attempts = dialer.stats().dial_attempts;
    assert!((15..=35).contains(&attempts), "{attempts} attempts in 30 s");
    assert_eq!(dialer.stats().dial_failures, attempts);
}

#[tokio::test(start_paused = true)]
async fn req_resends_on_the_virtual_clock() {
    let rep = Rep::new();
    rep.listen("inproc://paused-clock-resend").await.unwrap();
    let req = Req::new();
    req.set_resend_interval(Some(Duration::from_secs(60)));
    req.dial("inproc://paused-clock-resend").await.unwrap();
    req.send(&b"ping"[..]).await.unwrap();
    let first = rep.recv().await.unwrap();
    let start = tokio::time::Instant::now();
    // Not answered: the same request comes again after the resend interval.
    let again = rep.recv().await.unwrap();
    assert_eq!(again.body, first.body);
    assert!(start.elapsed() >= Duration::from_secs(60));
    assert_eq!(req.stats().req_resends, 1);
    rep.send(again.body).await.unwrap();
    assert_eq!(&req.recv().await.unwrap().body[..], b"ping");
}

/// With a resend tick, the resend waits for the first tick instant after the resend
/// interval: a 100 ms interval on a 1 s tick resends 1 s after the request went out, not
/// 100 ms after.
#[tokio::test(start_paused = true)]
async fn req_resend_waits_for_the_resend_tick() {
    let rep = Rep::new();
    rep.listen("inproc://paused-clock-resend-tick")
        .await
        .unwrap();
    let req = Req::new();
    req.set_resend_interval(Some(Duration::from_millis(100)));
    req.set_resend_tick(Some(Duration::from_secs(1)));
    req.dial("inproc://paused-clock-resend-tick").await.unwrap();
    let sent = tokio::time::Instant::now();
    req.send(&b"ping"[..]).await.unwrap();
    let first = rep.recv().await.unwrap();
    // Never answered: the same request comes again at the first tick after 100 ms.
    let again = rep.recv().await.unwrap();
    let waited = sent.elapsed();
    assert_eq!(again.body, first.body);
    assert!(waited >= Duration::from_secs(1), "resent after {waited:?}");
    assert!(waited < Duration::from_secs(2), "resent after {waited:?}");
    assert_eq!(req.stats().req_resends, 1);
}

#[tokio::test(start_paused = true)]
async fn survey_deadline_passes_in_virtual_time() {
    let surveyor = Surveyor::new();
    surveyor.set_survey_time(Duration::from_secs(45));
    surveyor.send(&b"anyone?"[..]).await.unwrap();
    let start = tokio::time::Instant::now();
    let err = surveyor.recv().await.unwrap_err();
    assert!(matches!(err, Error::TimedOut), "{err:?}");
    assert!(start.elapsed() >= Duration::from_secs(45));
    assert_eq!(surveyor.stats().survey_timeouts, 1);
}

/// A deadline that moves later while the socket's timer sleeps for an earlier one: the timer
/// is not woken for it, fires at the earlier time, finds nothing due, and sleeps again until
/// the later one. A new request replaces an unanswered one 40 s into its 60 s resend interval:
/// its own resend comes 60 s after it, not at the first request's 60 s mark.
#[tokio::test(start_paused = true)]
async fn a_later_deadline_is_kept_when_an_earlier_sleep_fires_first() {
    let rep = Rep::new();
    rep.listen("inproc://paused-clock-later-deadline")
        .await
        .unwrap();
    let req = Req::new();
    req.set_resend_interval(Some(Duration::from_secs(60)));
    req.dial("inproc://paused-clock-later-deadline")
        .await
        .unwrap();
    req.send(&b"first"[..]).await.unwrap();
    assert_eq!(&rep.recv().await.unwrap().body[..], b"first");
    tokio::time::sleep(Duration::from_secs(40)).await;
    let replaced = tokio::time::Instant::now();
    req.send(&b"second"[..]).await.unwrap();
    assert_eq!(&rep.recv().await.unwrap().body[..], b"second");
    // Unanswered: the second request comes again 60 s after it was sent (a timer that never
    // re-armed would fail here, at 120 s, rather than hang).
    let again = tokio::time::timeout(Duration::from_secs(120), rep.recv())
        .await
        .expect("the resend came")
        .unwrap();
    assert_eq!(&again.body[..], b"second");
    let waited = replaced.elapsed();
    assert!(waited >= Duration::from_secs(60), "{waited:?}");
    assert!(waited < Duration::from_secs(61), "{waited:?}");
    assert_eq!(req.stats().req_resends, 1);
}

/// A receive that polls its connection reads the system's clock for its polling window, never
/// the runtime's: on tokio's paused clock it still ends at its virtual deadline, and the
/// paused clock still advances to it (a receive that kept polling would hold it still).
#[tokio::test(start_paused = true)]
async fn a_polling_receive_times_out_at_its_deadline_on_the_paused_clock() {
    let rep = Rep::new();
    let listener = rep.listen("tcp://127.0.0.1:0").await.expect("listen");
    let req = Req::new();
    req.dial(&listener).await.expect("dial");
    // The REP has its one pipe once the REQ's request arrives.
    req.send("ping").await.expect("send");
    assert_eq!(&rep.recv().await.expect("request").body[..], b"ping");
    rep.send("pong").await.expect("reply");
    assert_eq!(&req.recv().await.expect("reply").body[..], b"pong");

    let started = tokio::time::Instant::now();
    let deadline = started.into_std() + Duration::from_secs(60);
    let outcome = rep.recv_until(deadline).await;
    assert!(
        matches!(outcome, Err(Error::TimedOut)),
        "expected a timeout, got {outcome:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(60));
}
