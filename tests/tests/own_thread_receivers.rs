//! A SUB whose receivers run on threads of their own (sp-blocking's callers) does not lose a
//! burst that arrives while its woken receiver is on its way.
//!
//! A SUB drops what its full queue cannot take (SP-PROTOCOLS.md, "SUB"). On tokio and smol
//! the receiver a delivery wakes runs before the pipe's task delivers more; a receiver on a
//! thread of its own may wake long after, and the pipe's next batches filled the queue
//! meanwhile. So a delivery that wakes such a receiver pauses its pipe until a receive takes
//! a message. The runtime here is tokio on one thread that says its receivers have threads of
//! their own: the order of events is the test's, not a scheduler's.

use std::time::Duration;

use sp_core::protocol::pubsub::Sub;
use sp_tests::tokio_variant::TokioVariant;
use sp_tests::{inproc_url, wait_until, RECV_TIMEOUT};
use sp_transport::Socket;

/// More messages than a SUB's queue holds (128).
const BURST: u32 = 200;

/// What a SUB on `rt` received of a burst of `BURST` messages that its publisher sent right
/// after a message that woke a task waiting for the SUB to become readable (which takes
/// nothing): the messages' numbers in the order received, and how many the SUB dropped.
/// The receives start once the publisher has written the burst to the connection (over tcp;
/// over inproc it is queued for the SUB's pipe at once) and, with `until_queue_full`, once
/// the SUB's queue is full.
async fn burst_after_a_wake_up(
    rt: TokioVariant,
    url: &str,
    until_queue_full: bool,
) -> (Vec<u32>, u64) {
    let sub: Socket<TokioVariant, Sub> = Socket::with_runtime(rt);
    sub.subscribe(b"");
    sub.set_recv_timeout(Some(RECV_TIMEOUT));
    let listener = sub.listen(url).await.expect("listen");
    let publisher = sp_tokio::Pub::new();
    publisher
        .dial(&listener.address().to_string())
        .await
        .expect("dial");
    wait_until("both sides attached", Duration::from_secs(10), || {
        sub.pipe_count() == 1 && publisher.pipe_count() == 1
    })
    .await;

    // A task waits for the SUB to become readable; on this one-thread runtime it is
    // registered once the yield returns.
    let waiter = tokio::spawn({
        let sub = sub.clone();
        async move { sub.readable().await }
    });
    tokio::task::yield_now().await;
    publisher
        .send(0u32.to_be_bytes().to_vec())
        .await
        .expect("send");
    waiter.await.expect("waiter").expect("readable");

    for n in 1..=BURST {
        publisher
            .send(n.to_be_bytes().to_vec())
            .await
            .expect("send");
    }
    if url.starts_with("tcp") {
        wait_until(
            "the publisher wrote the burst",
            Duration::from_secs(10),
            || publisher.stats().send_queued == 0,
        )
        .await;
    }
    if until_queue_full {
        wait_until("the SUB's queue is full", Duration::from_secs(10), || {
            sub.stats().recv_queued == 128
        })
        .await;
    }
    let mut got = Vec::new();
    loop {
        let msg = sub.recv().await.expect("the burst's last message arrives");
        let n = u32::from_be_bytes(msg.body[..].try_into().expect("4 bytes"));
        got.push(n);
        if n == BURST {
            break;
        }
    }
    (got, sub.stats().dropped.total())
}

/// The URLs the tests run over: tcp, and inproc (no connection: its pipe takes message
/// objects from the publisher's queue).
fn urls() -> [String; 2] {
    [
        "tcp://127.0.0.1:0".to_string(),
        inproc_url("own-thread-receivers"),
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn a_burst_after_a_wake_up_waits_for_the_receiver_on_its_own_thread() {
    for url in urls() {
        let rt = TokioVariant::own_thread_receivers();
        let (got, dropped) = burst_after_a_wake_up(rt, &url, false).await;
        assert_eq!(dropped, 0, "nothing dropped over {url}");
        let all: Vec<u32> = (0..=BURST).collect();
        assert_eq!(got, all, "every message, in order, over {url}");
    }
}

/// The same burst where receivers share the pipe's executor (tokio's own setting): the
/// readiness waiter took nothing, so the pipe delivers the burst on into the full queue once
/// its bytes arrive. This shows that the test above sends more than the queue holds, at a
/// moment when only the pause keeps it from overflowing. (Over inproc, whether the pipe ran
/// before the receives depends on the order tokio runs it in. The test above failed over
/// inproc while the paused deliveries were not yet held to 64 messages each.)
#[tokio::test(flavor = "current_thread")]
async fn without_the_pause_the_same_burst_overflows_the_queue() {
    let url = "tcp://127.0.0.1:0";
    let (got, dropped) = burst_after_a_wake_up(TokioVariant::default(), url, true).await;
    assert!(dropped > 0, "the queue overflowed");
    assert!(got.len() <= BURST as usize, "got {} messages", got.len());
}
