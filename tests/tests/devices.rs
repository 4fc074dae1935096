//! Devices and reflectors over real sockets (SP-PROTOCOLS.md section 5.2, scenarios 8.6
//! #87–#89): a REQ/REP broker over TCP, a chain of brokers cut off by the TTL, a PUB/SUB
//! forwarder, a BUS hub and a PAIR1 echo made of reflectors, and the checks that refuse
//! sockets a device cannot join, or that another device holds.
//!
//! Every wait polls an event (pipe counts, receives with timeouts); no test sleeps to
//! synchronise.

use std::time::Duration;

use sp_tests::{binary_payload, wait_for_pipes, Sock};
use sp_tokio::{
    device, reflector, Bus, Error, Pair1, Pub, Rep, Req, Sub, XBus, XPair1, XPub, XRep, XReq, XSub,
    XSurveyor,
};
use sp_transport::SocketCore;
use tokio::task::JoinHandle;

const T: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);
const LOCAL: &str = "tcp://127.0.0.1:0";

fn timeouts<P: SocketCore>(s: &Sock<P>, d: Duration) {
    s.set_recv_timeout(Some(d));
    s.set_send_timeout(Some(d));
}

async fn listen<P: SocketCore>(s: &Sock<P>) -> String {
    s.listen(LOCAL).await.expect("listen").to_string()
}

/// A REQ/REP broker: an XREP listening for clients and an XREQ listening for servers, joined
/// by a device running on its own task. Returns both sockets, their URLs and the task.
struct Broker {
    front: XRep,
    back: XReq,
    front_url: String,
    back_url: String,
    task: JoinHandle<sp_tokio::Result<()>>,
}

impl Broker {
    async fn start() -> Self {
        let front = XRep::new();
        let back = XReq::new();
        let front_url = listen(&front).await;
        let back_url = listen(&back).await;
        let (f, b) = (front.clone(), back.clone());
        let task = tokio::spawn(async move { device(&f, &b).await });
        Self {
            front,
            back,
            front_url,
            back_url,
            task,
        }
    }

    /// Closes both sockets and checks that the device ended cleanly.
    async fn stop(self) {
        self.front.close().await;
        self.back.close().await;
        let ended = tokio::time::timeout(T, self.task).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "device did not end cleanly: {ended:?}"
        );
    }
}

/// Answers every request on `rep` with `"re:"` and its body, until `rep` closes.
fn echo_server(rep: Rep) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(request) = rep.recv().await {
            let mut answer = b"re:".to_vec();
            answer.extend_from_slice(&request.body);
            if rep.send(answer).await.is_err() {
                return;
            }
        }
    })
}

// Scenario 88 (`device_test.c` test_device_forward): REQ -> XREP|XREQ -> REP over TCP, both
// ways, with binary payloads of several sizes intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqrep_through_a_broker_over_tcp() {
    let broker = Broker::start().await;
    let server = Rep::new();
    server.dial(&broker.back_url).await.unwrap();
    let server_task = echo_server(server.clone());
    let client = Req::new();
    timeouts(&client, T);
    client.dial(&broker.front_url).await.unwrap();
    wait_for_pipes(&broker.front, 1).await;
    wait_for_pipes(&broker.back, 1).await;

    for (i, len) in [0usize, 1, 100, 70_000].into_iter().enumerate() {
        let payload = binary_payload(len, i as u8);
        client.send(payload.clone()).await.unwrap();
        let reply = client.recv().await.expect("reply through the broker");
        assert!(reply.header.is_empty());
        assert_eq!(&reply.body[..3], b"re:");
        assert_eq!(&reply.body[3..], &payload[..], "payload of {len} bytes");
    }

    server.close().await;
    server_task.await.unwrap();
    broker.stop().await;
}

// Section 5.3: each broker's XREP adds a backtrace word, so a request crosses a chain of
// brokers only while the final REP's TTL covers the words. With TTL 3 a request passes two
// brokers (3 words) and is dropped after three (4 words).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_drops_the_request_after_too_many_devices() {
    for (devices, answered) in [(2, true), (3, false)] {
        let brokers = {
            let mut v = Vec::new();
            for _ in 0..devices {
                v.push(Broker::start().await);
            }
            v
        };
        for pair in brokers.windows(2) {
            pair[0].back.dial(&pair[1].front_url).await.unwrap();
        }
        let server = Rep::new();
        server.set_max_ttl(3).unwrap();
        server.dial(&brokers[devices - 1].back_url).await.unwrap();
        let server_task = echo_server(server.clone());
        let client = Req::new();
        client.dial(&brokers[0].front_url).await.unwrap();
        for b in &brokers {
            wait_for_pipes(&b.front, 1).await;
            wait_for_pipes(&b.back, 1).await;
        }

        client.send("deep").await.unwrap();
        let wait = if answered { T } else { SHORT };
        client.set_recv_timeout(Some(wait));
        let reply = client.recv().await;

        match (answered, reply) {
            (true, Ok(m)) => assert_eq!(m.body, "re:deep"),
            (false, Err(Error::TimedOut)) => {}
            (_, other) => panic!("{devices} devices: unexpected {other:?}"),
        }
        server.close().await;
        server_task.await.unwrap();
        for b in brokers {
            b.stop().await;
        }
    }
}

// Scenario 88 for PUB/SUB: an XSUB dials the publisher, an XPUB listens for subscribers, and
// the device forwards one way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_forwarder_runs_one_way() {
    let publisher = Pub::new();
    let pub_url = listen(&publisher).await;
    let xsub = XSub::new();
    let xpub = XPub::new();
    xsub.dial(&pub_url).await.unwrap();
    let sub_url = listen(&xpub).await;
    let (a, b) = (xsub.clone(), xpub.clone());
    let task = tokio::spawn(async move { device(&a, &b).await });
    let subscriber = Sub::new();
    timeouts(&subscriber, T);
    subscriber.subscribe(b"");
    subscriber.dial(&sub_url).await.unwrap();
    wait_for_pipes(&publisher, 1).await;
    wait_for_pipes(&xpub, 1).await;

    for news in ["one", "two"] {
        publisher.send(news).await.unwrap();
        assert_eq!(subscriber.recv().await.unwrap().body, news);
    }

    xsub.close().await;
    let ended = tokio::time::timeout(T, task).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

// Scenario 85 with a reflector (section 5.2 item 3): an XBUS reflector is a BUS hub; a
// spoke's message reaches every other spoke and not its sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_reflector_is_a_hub() {
    let hub = XBus::new();
    let url = listen(&hub).await;
    let h = hub.clone();
    let task = tokio::spawn(async move { reflector(&h).await });
    let mut spokes = Vec::new();
    for _ in 0..3 {
        let spoke = Bus::new();
        spoke.dial(&url).await.unwrap();
        spokes.push(spoke);
    }
    wait_for_pipes(&hub, 3).await;

    spokes[0].send("hello all").await.unwrap();

    for spoke in &spokes[1..] {
        timeouts(spoke, T);
        assert_eq!(spoke.recv().await.unwrap().body, "hello all");
    }
    spokes[0].set_recv_timeout(Some(SHORT));
    assert!(matches!(spokes[0].recv().await, Err(Error::TimedOut)));

    hub.close().await;
    let ended = tokio::time::timeout(T, task).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

// Scenario 89 (`device_test.c` test_device_reflect): a raw PAIR1 reflector echoes `ping` and
// `pong` back to its client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair1_reflector_echoes() {
    let echo = XPair1::new();
    let url = listen(&echo).await;
    let e = echo.clone();
    let task = tokio::spawn(async move { reflector(&e).await });
    let client = Pair1::new();
    timeouts(&client, T);
    client.dial(&url).await.unwrap();

    for word in ["ping", "pong"] {
        client.send(word).await.unwrap();
        assert_eq!(client.recv().await.unwrap().body, word);
    }

    echo.close().await;
    let ended = tokio::time::timeout(T, task).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

// Scenario 88's PAIR forwarder (`tests/device.c`): two raw PAIR1 sockets joined by a device
// carry a PAIR1 client's messages to a PAIR1 server and the answers back; closing one side
// ends the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair1_forwarder_runs_both_ways() {
    let (front, back) = (XPair1::new(), XPair1::new());
    let (front_url, back_url) = (listen(&front).await, listen(&back).await);
    let (f, b) = (front.clone(), back.clone());
    let task = tokio::spawn(async move { device(&f, &b).await });
    let (client, server) = (Pair1::new(), Pair1::new());
    timeouts(&client, T);
    timeouts(&server, T);
    client.dial(&front_url).await.unwrap();
    server.dial(&back_url).await.unwrap();
    wait_for_pipes(&front, 1).await;
    wait_for_pipes(&back, 1).await;

    for n in 0..3 {
        client.send(format!("ask {n}")).await.unwrap();
        assert_eq!(
            server.recv().await.unwrap().body,
            format!("ask {n}").as_bytes()
        );
        server.send(format!("answer {n}")).await.unwrap();
        assert_eq!(
            client.recv().await.unwrap().body,
            format!("answer {n}").as_bytes()
        );
    }

    front.close().await;
    let ended = tokio::time::timeout(T, task).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

// Scenario 87 (`device_test.c` test_device_not_cooked, test_device_incompatible): cooked
// sockets and protocols that do not face each other are refused with a typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_refuses_cooked_and_mismatched_sockets() {
    let (xrep, xreq) = (XRep::new(), XReq::new());
    let cooked_rep = Rep::new();
    let xsurveyor = XSurveyor::new();

    let not_raw = device(&cooked_rep, &xreq).await.unwrap_err();
    assert!(matches!(not_raw, Error::NotRaw), "{not_raw:?}");
    let mismatch = device(&xrep, &xsurveyor).await.unwrap_err();
    assert!(
        matches!(mismatch, Error::IncompatibleDevice { .. }),
        "{mismatch:?}"
    );
    assert!(device(&xrep, &xrep).await.unwrap_err().is_device_mismatch());
    assert!(matches!(
        reflector(&xreq).await,
        Err(Error::IncompatibleDevice { .. })
    ));
    assert!(matches!(reflector(&Bus::new()).await, Err(Error::NotRaw)));
}

/// Scenario 87's last check (NNG `test_device_aio_duplicate_busy`): a socket that forwards
/// in a running device cannot join a second device or a reflector, which would split its
/// messages; once the first device stops (is dropped), it can.
#[tokio::test]
async fn a_socket_in_a_running_device_is_busy() {
    use futures_util::FutureExt;
    use std::future::Future;
    use std::task::{Context, Waker};

    // One poll, as an executor's first: the device checks and claims its sockets there.
    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    let (front, back, other_back) = (XRep::new(), XReq::new(), XReq::new());
    // Boxed, so that dropping it drops the device (a `pin!` keeps it to the end of scope).
    let mut first = Box::pin(device(&front, &back));
    assert!(
        poll_once(first.as_mut()).is_pending(),
        "the first device runs"
    );
    for (what, second) in [
        ("the same front", device(&front, &other_back).now_or_never()),
        ("the same back", device(&XRep::new(), &back).now_or_never()),
    ] {
        assert!(
            matches!(second, Some(Err(Error::DeviceBusy))),
            "{what}: {second:?}"
        );
    }
    let pair = XPair1::new();
    let echo = reflector(&pair);
    let mut echo = std::pin::pin!(echo);
    assert!(poll_once(echo.as_mut()).is_pending(), "a reflector runs");
    assert!(matches!(
        device(&pair, &XPair1::new()).now_or_never(),
        Some(Err(Error::DeviceBusy))
    ));

    drop(first);
    let again = device(&front, &other_back);
    let mut again = std::pin::pin!(again);
    assert!(
        poll_once(again.as_mut()).is_pending(),
        "the front is free again once the first device is gone"
    );
    assert!(
        device(&XRep::new(), &back).now_or_never().is_none(),
        "the back is free again too"
    );
}

// Section 5.2 with sp-blocking: the blocking device forwards until one side closes.
#[test]
fn blocking_device_forwards_and_stops_on_close() {
    let front = sp_blocking::XRep::new();
    let back = sp_blocking::XReq::new();
    let front_url = front.listen(LOCAL).unwrap().to_string();
    let back_url = back.listen(LOCAL).unwrap().to_string();
    let (f, b) = (front.clone(), back.clone());
    let dev = std::thread::spawn(move || sp_blocking::device(&f, &b));
    let server = sp_blocking::Rep::new();
    server.dial(&back_url).unwrap();
    let client = sp_blocking::Req::new();
    client.set_recv_timeout(Some(T));
    client.dial(&front_url).unwrap();
    server.set_recv_timeout(Some(T));

    client.send("blocking").unwrap();
    let request = server.recv().unwrap();
    server.send(request.body).unwrap();
    assert_eq!(client.recv().unwrap().body, "blocking");

    front.close();
    assert!(dev.join().unwrap().is_ok());
}
