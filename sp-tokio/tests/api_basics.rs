//! Small API guarantees: what `send` accepts, `Debug` output, and a context that keeps its
//! socket open.

use std::time::Duration;

use sp_tokio::{Rep, Req};

#[tokio::test]
async fn send_takes_byte_strings_strings_and_vectors() {
    let rep = Rep::new();
    rep.set_recv_timeout(Some(Duration::from_secs(5)));
    let bound = rep.listen("inproc://api-basics-send").await.unwrap();
    let req = Req::new();
    req.set_recv_timeout(Some(Duration::from_secs(5)));
    req.dial(&bound).await.unwrap();
    for body in [
        sp_tokio::Message::from(b"bytes"),
        String::from("string").into(),
        vec![1u8, 2, 3].into(),
        "str".into(),
    ] {
        req.send(body.clone()).await.unwrap();
        let got = rep.recv().await.unwrap();
        assert_eq!(got.body, body.body);
        rep.send(got.body).await.unwrap();
        req.recv().await.unwrap();
    }
}

#[tokio::test]
async fn a_context_keeps_its_socket_open() {
    // The socket handle is dropped at once; the context keeps the socket open, so its send
    // is queued for a pipe rather than refused as closed.
    let ctx = Req::new().context().unwrap();
    ctx.send(b"ping").await.expect("the socket is still open");
}

#[tokio::test]
async fn sockets_and_endpoints_print_what_they_are() {
    let rep = Rep::new();
    rep.set_name("api").unwrap();
    let listener = rep.listen("inproc://api-basics-debug").await.unwrap();
    let text = format!("{rep:?}");
    assert!(text.contains("rep") && text.contains("\"api\""), "{text}");
    let text = format!("{listener:?}");
    assert!(text.contains("inproc://api-basics-debug"), "{text}");
    assert_eq!(listener.to_string(), "inproc://api-basics-debug");
}
