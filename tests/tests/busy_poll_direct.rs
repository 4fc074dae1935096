//! A receive that polls before it sleeps reads its connection itself. Over a connection whose
//! stream goes deaf after the SP handshake (its reads stay pending and never wake anyone, as
//! if the runtime's reactor never reported the peer's bytes), a receive gets the peer's
//! message only through that direct read; with polling off, the same receive times out.
//!
//! Its own test binary: it sets the process-wide limit (`sp_transport::set_busy_poll_limit`).

use std::time::Duration;

use sp_core::protocol::pair::Pair;
use sp_tests::tokio_variant::TokioVariant;
use sp_transport::Socket;

/// Our PAIR over a deaf connection to a tokio PAIR peer, which has sent one message: what
/// our receive got within `within` (`None`: nothing; the time limit dropped the receive).
async fn receive_from_a_deaf_connection(
    within: Duration,
) -> Option<sp_transport::Result<sp_transport::Message>> {
    let peer = sp_tokio::Pair::new();
    let listener = peer.listen("tcp://127.0.0.1:0").await.expect("listen");
    let sp_transport::Address::Tcp { port, .. } = listener.address() else {
        panic!("a tcp listener has a tcp address");
    };
    let ours: Socket<TokioVariant, Pair> =
        Socket::with_runtime(TokioVariant::deaf_after_handshake());
    let conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    ours.adopt_tcp(conn).await.expect("adopt");
    peer.set_send_timeout(Some(Duration::from_secs(5)));
    peer.send("through the direct read").await.expect("send");
    // A time limit around the receive, not its own deadline: at its deadline a receive
    // tries once more, and that attempt must not count here.
    tokio::time::timeout(within, ours.recv()).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_reads_bytes_that_its_runtime_never_reported() {
    // Polling off: nothing reports the bytes, and the receive gets nothing. This shows the
    // connection deaf, so that the second half can pass only through the direct read.
    sp_transport::set_busy_poll_limit(Duration::ZERO);
    let deaf = receive_from_a_deaf_connection(Duration::from_millis(300)).await;
    assert!(deaf.is_none(), "got {deaf:?}");

    // Polling for up to a second: the receive reads the connection itself.
    sp_transport::set_busy_poll_limit(Duration::from_secs(1));
    let msg = receive_from_a_deaf_connection(Duration::from_secs(10))
        .await
        .expect("the direct read delivered the message")
        .expect("a message");
    assert_eq!(&msg.body[..], b"through the direct read");
    sp_transport::set_busy_poll_limit(sp_transport::DEFAULT_BUSY_POLL);
}
