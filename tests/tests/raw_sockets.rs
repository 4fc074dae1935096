//! Raw sockets, polyamorous PAIR v1 and STAR through the driver over real TCP
//! (SP-PROTOCOLS.md sections 4.2, 4.8 and 5.1): headers travel from the application to the
//! wire and back unchanged, poly receives name their pipe and poly sends follow it.
//!
//! Every wait polls an event (pipe counts, receives with timeouts); no test sleeps to
//! synchronise.

use std::time::Duration;

use sp_tests::{wait_for_pipes, Sock};
use sp_tokio::{Error, Message, Pair1, Pair1Poly, Rep, Req, Star, XPair1, XRep, XReq, XStar};
use sp_transport::SocketCore;

const T: Duration = Duration::from_secs(5);
const LOCAL: &str = "tcp://127.0.0.1:0";

fn timeouts<P: SocketCore>(s: &Sock<P>) {
    s.set_recv_timeout(Some(T));
    s.set_send_timeout(Some(T));
}

// Section 5.1: XREP shows [arrival pipe, request ID] and routes the reply by the pipe word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xrep_header_round_trips_through_the_driver() {
    let xrep = XRep::new();
    timeouts(&xrep);
    let url = xrep.listen(LOCAL).await.unwrap().to_string();
    let req = Req::new();
    timeouts(&req);
    req.dial(&url).await.unwrap();

    req.send("question").await.unwrap();
    let request = xrep.recv().await.unwrap();
    assert_eq!(request.header.len(), 8);
    assert_eq!(request.header[4] & 0x80, 0x80, "bottom word has bit 31 set");
    xrep.send(Message::with_header(request.header, "answer"))
        .await
        .unwrap();

    assert_eq!(req.recv().await.unwrap().body, "answer");
}

// Section 5.1: XREQ writes the header as given and receives the whole stack back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xreq_header_goes_out_as_given() {
    let rep = Rep::new();
    timeouts(&rep);
    let url = rep.listen(LOCAL).await.unwrap().to_string();
    let xreq = XReq::new();
    timeouts(&xreq);
    xreq.dial(&url).await.unwrap();
    let header = &b"\x00\x00\x00\x2a\x80\x00\x00\x07"[..];

    xreq.send(Message::with_header(header, "q")).await.unwrap();
    let request = rep.recv().await.unwrap();
    rep.send(request.body).await.unwrap();

    let reply = xreq.recv().await.unwrap();
    assert_eq!((&reply.header[..], &reply.body[..]), (header, &b"q"[..]));
}

// Section 4.2: raw PAIR1 refuses a bad header with a typed error and counts a hop on send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xpair1_checks_and_increments_the_hop_word() {
    let a = XPair1::new();
    timeouts(&a);
    let url = a.listen(LOCAL).await.unwrap().to_string();
    let b = XPair1::new();
    timeouts(&b);
    b.dial(&url).await.unwrap();

    let bad = b
        .send(Message::with_header(&b"\x00\x00\x00\xff"[..], "x"))
        .await
        .expect_err("a hop count of 255 is refused");
    assert!(matches!(bad.error(), Error::InvalidHeader), "{bad:?}");
    // The refused message comes back untouched.
    assert_eq!(&bad.message().header[..], b"\x00\x00\x00\xff");
    assert_eq!(&bad.message().body[..], b"x");
    b.send(Message::with_header(&b"\x00\x00\x00\x03"[..], "x"))
        .await
        .unwrap();

    let got = a.recv().await.unwrap();
    assert_eq!(&got.header[..], b"\x00\x00\x00\x04");
}

// Scenario 82 (`pair1_poly_test.c` test_poly_cooked): each client is answered on its own pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair1_poly_answers_on_the_arrival_pipe() {
    let server = Pair1Poly::new();
    timeouts(&server);
    let url = server.listen(LOCAL).await.unwrap().to_string();
    let clients = [Pair1::new(), Pair1::new()];
    for c in &clients {
        timeouts(c);
        c.dial(&url).await.unwrap();
    }
    wait_for_pipes(&server, 2).await;

    for (i, c) in clients.iter().enumerate() {
        c.send(format!("client {i}").into_bytes()).await.unwrap();
    }
    for _ in 0..clients.len() {
        let msg = server.recv().await.unwrap();
        assert!(msg.pipe.is_some(), "a poly receive names its pipe");
        let mut answer = b"for ".to_vec();
        answer.extend_from_slice(&msg.body);
        server
            .send(Message::new(answer).with_pipe(msg.pipe))
            .await
            .unwrap();
    }

    for (i, c) in clients.iter().enumerate() {
        let want = format!("for client {i}");
        assert_eq!(c.recv().await.unwrap().body, want.as_bytes());
    }
}

// Scenario 86 through the driver: cooked STAR relays, raw STAR shows the hop count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_relays_through_the_middle_socket() {
    let middle = Star::new();
    timeouts(&middle);
    let url = middle.listen(LOCAL).await.unwrap().to_string();
    let (s1, s3) = (XStar::new(), XStar::new());
    for s in [&s1, &s3] {
        timeouts(s);
        s.dial(&url).await.unwrap();
    }
    wait_for_pipes(&middle, 2).await;

    s1.send(Message::with_header(&b"\x00\x00\x00\x00"[..], "hi"))
        .await
        .unwrap();

    // Every receive names the pipe the message came on (sp_core::Message::pipe), so compare
    // header and body.
    let got = middle.recv().await.unwrap();
    assert_eq!((&got.header[..], &got.body[..]), (&b""[..], &b"hi"[..]));
    assert!(got.pipe.is_some(), "a received message names its pipe");
    let relayed = s3.recv().await.unwrap();
    assert_eq!(
        (&relayed.header[..], &relayed.body[..]),
        (&b"\x00\x00\x00\x02"[..], &b"hi"[..])
    );
    assert!(middle.set_max_ttl(0).is_err());
}
