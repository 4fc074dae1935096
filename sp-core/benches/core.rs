//! Per-message cost of the sans-IO pieces on the hot path: framing and protocol cores.
//!
//! `cargo bench -p sp-core --bench core`. Numbers are recorded in BENCHMARKS.md.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sp_core::frame::{encode, FrameDecoder, FrameKind, DEFAULT_MAX_MESSAGE_SIZE};
use sp_core::protocol::pair1::{Pair1, Pair1Config};
use sp_core::protocol::pubsub::{Sub, SubConfig};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::{Input, Protocol};
use sp_core::{Message, PipeId, ProtocolId};

const BATCH: usize = 1000;

fn framing(c: &mut Criterion) {
    let msg = Message::new(Bytes::from(vec![7u8; 64]));
    let mut stream = BytesMut::new();
    for _ in 0..BATCH {
        encode(FrameKind::Tcp, &msg, &mut stream);
    }
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("encode 1000 x 64 B", |b| {
        let mut out = BytesMut::with_capacity(stream.len());
        b.iter(|| {
            out.clear();
            for _ in 0..BATCH {
                encode(FrameKind::Tcp, &msg, &mut out);
            }
        })
    });
    group.bench_function("decode 1000 x 64 B", |b| {
        b.iter_batched(
            || stream.clone(),
            |mut buf| {
                let mut dec = FrameDecoder::new(FrameKind::Tcp, DEFAULT_MAX_MESSAGE_SIZE);
                let mut n = 0;
                while let Ok(Some(_)) = dec.decode(&mut buf) {
                    n += 1;
                }
                assert_eq!(n, BATCH);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn cores(c: &mut Criterion) {
    let now = Instant::now();
    let pipe = PipeId::new(1).expect("1 is a valid pipe id");
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(1));

    let mut pair = Pair1::new(Pair1Config::default());
    pair.handle(
        Input::PipeAdded {
            pipe,
            peer: ProtocolId::PAIR1,
        },
        now,
    );
    let body = Bytes::from(vec![1u8; 64]);
    let wire = Bytes::from([&[0u8, 0, 0, 1][..], &body[..]].concat());
    group.bench_function("pair1 send + receive", |b| {
        b.iter(|| {
            pair.send(Message::new(body.clone()), now)
                .expect("pipe is writable");
            let tx = pair.poll_transmit().expect("one transmit");
            pair.handle(Input::PipeWritable { pipe }, now);
            pair.handle(
                Input::Received {
                    pipe,
                    msg: Message::new(wire.clone()),
                },
                now,
            );
            while pair.poll_event().is_some() {}
            let got = pair.recv(now).expect("message queued");
            (tx, got)
        })
    });

    let mut req = Req::new(ReqConfig::default());
    let mut rep = Rep::new(RepConfig::default());
    req.handle(
        Input::PipeAdded {
            pipe,
            peer: ProtocolId::REP,
        },
        now,
    );
    rep.handle(
        Input::PipeAdded {
            pipe,
            peer: ProtocolId::REQ,
        },
        now,
    );
    group.bench_function("req/rep round trip", |b| {
        b.iter(|| {
            req.send(Message::new(body.clone()), now)
                .expect("pipe is writable");
            let request = req.poll_transmit().expect("request");
            req.handle(Input::PipeWritable { pipe }, now);
            rep.handle(
                Input::Received {
                    pipe,
                    msg: Message::new(request.msg.to_contiguous()),
                },
                now,
            );
            let got = rep.recv(now).expect("request queued");
            rep.send(got, now).expect("reply accepted");
            let reply = rep.poll_transmit().expect("reply");
            rep.handle(Input::PipeWritable { pipe }, now);
            req.handle(
                Input::Received {
                    pipe,
                    msg: Message::new(reply.msg.to_contiguous()),
                },
                now,
            );
            while req.poll_event().is_some() {}
            while rep.poll_event().is_some() {}
            req.recv(now).expect("reply delivered")
        })
    });
    group.finish();
}

/// A 32-byte topic: `metrics/host<6 digits>/cpu/load/avg1`.
fn topic(host: usize) -> String {
    let topic = format!("metrics/host{host:06}/cpu/load/avg1");
    debug_assert_eq!(topic.len(), 32);
    topic
}

/// SUB matching: the cost of filtering one message must not grow with the subscription count.
fn topics(c: &mut Criterion) {
    let now = Instant::now();
    let pipe = PipeId::new(1).expect("1 is a valid pipe id");
    let payload = [0u8; 32];
    let hit = Bytes::from([topic(7).as_bytes(), &payload].concat());
    let miss_topic = topic(7).replace("avg1", "avg5");
    let miss = Bytes::from([miss_topic.as_bytes(), &payload].concat());
    let mut group = c.benchmark_group("topic");
    group.throughput(Throughput::Elements(1));
    for count in [10, 100_000] {
        let mut sub = Sub::new(SubConfig::default());
        for host in 0..count {
            sub.subscribe(topic(host).as_bytes());
        }
        sub.handle(
            Input::PipeAdded {
                pipe,
                peer: ProtocolId::PUB,
            },
            now,
        );
        group.bench_function(format!("match 32 B topic, {count} subs, hit"), |b| {
            b.iter(|| {
                let msg = Message::new(hit.clone());
                sub.handle(Input::Received { pipe, msg }, now);
                while sub.poll_event().is_some() {}
                sub.recv(now).expect("the message matched")
            })
        });
        group.bench_function(format!("match 32 B topic, {count} subs, miss"), |b| {
            b.iter(|| {
                let msg = Message::new(miss.clone());
                sub.handle(Input::Received { pipe, msg }, now);
                sub.recv(now).expect_err("the message matched nothing")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, framing, cores, topics);
criterion_main!(benches);
