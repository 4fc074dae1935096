//! The pool's run queue under load: callers that spin, callers that sleep, and workers hand
//! tasks to one another without losing a wake-up. A lost wake-up shows as a call that never
//! returns, which `within` turns into a failure.

mod support;

use std::thread;
use std::time::Duration;

use support::{url, within, Transport};

/// Pairs of threads ping-pong over inproc (every wait spins, then some sleep when the pairs
/// outnumber the cores), while TCP pairs keep the workers and the reactor busy. Each side
/// checks every message it gets.
#[test]
fn many_spinning_and_sleeping_callers_lose_no_wake_up() {
    within(60, || {
        const PAIRS: usize = 4;
        const TRIPS: u32 = 2_000;
        let mut threads = Vec::new();
        for i in 0..PAIRS {
            // Half the pairs over inproc (spinning waits), half over TCP (the caller's own
            // poll(2), the reactor and the workers).
            let t = if i % 2 == 0 {
                Transport::Inproc
            } else {
                Transport::Tcp
            };
            let a = sp_blocking::Pair::new();
            let b = sp_blocking::Pair::new();
            let bound = a.listen(url(t)).unwrap().to_string();
            b.dial(&bound).unwrap();
            threads.push(thread::spawn(move || {
                for n in 0..TRIPS {
                    a.send(n.to_be_bytes().to_vec()).unwrap();
                    let back = a.recv().expect("the echo arrives");
                    assert_eq!(&back.body[..], &n.to_be_bytes()[..]);
                }
                a.close();
            }));
            threads.push(thread::spawn(move || {
                for n in 0..TRIPS {
                    let got = b.recv().expect("the request arrives");
                    assert_eq!(&got.body[..], &n.to_be_bytes()[..]);
                    b.send(got.body).unwrap();
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// A receive that waits longer than the spin sleeps, and a message sent then still wakes it;
/// so does one sent while it spins.
#[test]
fn a_receive_is_woken_whether_it_spins_or_sleeps() {
    within(30, || {
        let pull = sp_blocking::Pull::new();
        let bound = pull.listen(url(Transport::Inproc)).unwrap().to_string();
        let push = sp_blocking::Push::new();
        push.dial(&bound).unwrap();
        let sender = thread::spawn(move || {
            for (n, pause) in [0u64, 1, 0, 5, 0, 20].into_iter().enumerate() {
                // 0: while the receiver spins; 1, 5 and 20 ms: after it went to sleep.
                thread::sleep(Duration::from_millis(pause));
                push.send(vec![n as u8]).unwrap();
            }
            push
        });
        for n in 0..6u8 {
            assert_eq!(&pull.recv().unwrap().body[..], &[n][..]);
        }
        sender.join().unwrap();
    });
}

/// A thread that sends a stream of messages and then stops calling sp-blocking (it waits on
/// something else) still has the stream's last message written, by a worker once the
/// writer's delay has passed: no later send or wait of that thread runs the writer, and the
/// receiver is a plain socket in this test, so no other sp-blocking caller of the process
/// does either.
#[test]
fn the_end_of_a_stream_of_sends_goes_out_without_another_call() {
    use std::io::{Read, Write};
    use std::sync::mpsc::channel;

    within(60, || {
        // More than a stream's worth of sends in a row (see the pool's `STREAK_SENDS`).
        const STREAM: u32 = 500;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The SP handshake of a PULL peer (protocol 0x51), and PUSH's (0x50) in return.
        let accept = thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(&[0, b'S', b'P', 0, 0, 0x51, 0, 0]).unwrap();
            let mut theirs = [0u8; 8];
            peer.read_exact(&mut theirs).unwrap();
            assert_eq!(theirs, [0, b'S', b'P', 0, 0, 0x50, 0, 0]);
            peer
        });
        let push = sp_blocking::Push::new();
        push.dial(format!("tcp://{addr}")).unwrap();
        let mut peer = accept.join().unwrap();
        let mut read_message = |n: u32| {
            let mut frame = [0u8; 12];
            peer.read_exact(&mut frame).expect("the message arrives");
            assert_eq!(frame[..8], 4u64.to_be_bytes());
            assert_eq!(frame[8..], n.to_be_bytes());
        };
        let (stream_read_tx, stream_read_rx) = channel::<()>();
        let (done_tx, done_rx) = channel::<()>();
        let sender = thread::spawn(move || {
            for n in 0..STREAM {
                push.send(n.to_be_bytes().to_vec()).unwrap();
            }
            // The pipe's writer is idle once the stream is read: this send wakes it, and
            // nothing of this thread runs it afterwards.
            stream_read_rx.recv().unwrap();
            push.send(STREAM.to_be_bytes().to_vec()).unwrap();
            done_rx.recv().unwrap();
            push
        });
        for n in 0..STREAM {
            read_message(n);
        }
        stream_read_tx.send(()).unwrap();
        read_message(STREAM);
        done_tx.send(()).unwrap();
        sender.join().unwrap();
    });
}
