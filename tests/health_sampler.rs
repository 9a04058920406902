//! The health sampler's own logic, against local listeners answering canned bodies (no
//! sandbox): images, HTTP errors, refused and silent hosts, and the per-round counts.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::netboot::HealthSampler;

/// A listener answering each request with `answer(n)` (n = requests so far); its address.
fn serve(answer: impl Fn(usize) -> Option<String> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let served = AtomicUsize::new(0);
        let mut silent = Vec::new();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            // The whole request, so that closing leaves nothing unread (which would be a reset).
            let mut request = Vec::new();
            let mut chunk = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            match answer(served.fetch_add(1, Ordering::SeqCst)) {
                Some(reply) => {
                    let _ = stream.write_all(reply.as_bytes());
                }
                None => silent.push(stream), // never answers: a read timeout
            }
        }
    });
    addr
}

fn ok(body: &str) -> Option<String> {
    Some(format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{body}"
    ))
}

#[test]
fn the_sampler_records_every_host_every_round_and_counts_the_unavailable() {
    // Image a for 4 requests, then b: a rotation seen from outside.
    let rotating_served = Arc::new(AtomicUsize::new(0));
    let served = rotating_served.clone();
    let rotating = serve(move |n| {
        served.store(n + 1, Ordering::SeqCst);
        ok(if n < 4 {
            "IMAGE=a\nLABEL=A\n"
        } else {
            "IMAGE=b\nLABEL=B\n"
        })
    });
    let broken = serve(|_| Some("HTTP/1.0 404 Not Found\r\n\r\nnope".into()));
    let silent = serve(|_| None);
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string() // dropped: nothing listens there any more
    };
    let hosts = [
        rotating.as_str(),
        broken.as_str(),
        silent.as_str(),
        closed.as_str(),
    ];
    let started = Instant::now();
    let sampler = HealthSampler::start(&hosts, Duration::from_millis(250));
    // Rounds go on although a host never answers (hosts are asked in parallel, each with
    // its timeout): wait for eight, however long this machine takes.
    while rotating_served.load(Ordering::SeqCst) < 8 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "rounds stopped coming"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let samples = sampler.stop();
    let rounds = samples.rounds.len();
    eprintln!("{}", samples.summary());
    assert!(rounds >= 7, "{rounds} rounds in {:?}", started.elapsed());
    for (k, r) in samples.rounds.iter().enumerate() {
        assert_eq!(r.answers.len(), 4);
        let want = if k < 4 { "a" } else { "b" };
        assert_eq!(r.answers[0], Ok(want.to_owned()), "round {k}");
        assert_eq!(r.answers[1], Err("HTTP 404".to_owned()));
        assert_eq!(r.answers[2], Err("timeout".to_owned()));
        assert_eq!(r.answers[3], Err("connect: refused".to_owned()));
    }
    assert_eq!(samples.max_not_answering_any(&["a", "b"]), 3);
    assert_eq!(samples.max_not_answering_any(&["a"]), 4);
    assert_eq!(samples.max_not_answering_any(&[]), 4);

    let per_host = samples.per_host();
    assert_eq!(per_host[0].images.get("a"), Some(&4));
    assert_eq!(per_host[0].images.get("b"), Some(&(rounds - 4)));
    assert_eq!(per_host[0].longest_outage.0, 0);
    assert_eq!(per_host[1].errors.get("HTTP 404"), Some(&rounds));
    assert_eq!(per_host[3].longest_outage.0, rounds);
}

#[test]
fn an_outage_is_the_longest_run_of_rounds_without_an_image() {
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    // Answers, fails for rounds 2..5 (no IMAGE= line, then a 503), answers again.
    let host = serve(move |k| {
        seen.store(k, Ordering::SeqCst);
        match k {
            2 | 3 => ok("LABEL=C\n"),
            4 => Some("HTTP/1.0 503 Busy\r\n\r\n".into()),
            _ => ok("IMAGE=a\n"),
        }
    });
    let sampler = HealthSampler::start(&[host.as_str()], Duration::from_millis(50));
    while n.load(Ordering::SeqCst) < 7 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let samples = sampler.stop();
    let s = &samples.per_host()[0];
    assert_eq!(s.errors.get("no IMAGE="), Some(&2));
    assert_eq!(s.errors.get("HTTP 503"), Some(&1));
    assert_eq!(s.longest_outage.0, 3);
    assert!(
        s.longest_outage.1 >= Duration::from_millis(140),
        "{:?}",
        s.longest_outage
    );
    assert_eq!(samples.max_not_answering_any(&["a"]), 1);
}
