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
