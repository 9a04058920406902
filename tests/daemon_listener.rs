//! The daemon's HTTP listener under hostile clients: slow or silent ones are
//! disconnected, a flood of idle connections under a low descriptor limit does not stop
//! `/healthz`, reloads or RAPI calls, and a blank webhook secret stops the start. The
//! RAPI is the in-process fake; no sandbox is needed.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::fake_rapi::{FakeRapi, Reply};
use common::reconcile::{Workspace, sandbox_yaml};

/// A short header timeout and a resync that does not come during the test.
const FAST_LIMITS: &[&str] = &["--http-header-timeout", "1s", "--resync-interval", "1h"];

/// A daemon against a fake RAPI that refuses every request (each reconcile ends at once).
async fn daemon_with(
    extra: &[&str],
    adjust: impl FnOnce(&mut std::process::Command),
) -> (Daemon, FakeRapi, Workspace) {
    let rapi = FakeRapi::start(|_, _| Reply::Json(401, "{}".into())).await;
    let ws = Workspace::new();
    ws.write(&sandbox_yaml());
    let url = format!("https://{}", rapi.addr);
    let fingerprint = rapi.fingerprint.to_string();
    let desired = ws.desired();
    let mut args = vec![
        "--rapi-url",
        &url,
        "--rapi-user",
        "gnt-admin",
        "--rapi-fingerprint",
        &fingerprint,
    ];
    args.extend_from_slice(extra);
    let daemon = Daemon::start_with(
        &["--dir", desired.to_str().unwrap()],
        &ws.state(),
        &args,
        |command| {
            // Only the fake's settings: the sandbox's (under tests/run.sh) would clash.
            for name in [
                "GANETI_RAPI_URL",
                "GANETI_RAPI_USER",
                "GANETI_RAPI_PASSWORD_FILE",
                "GANETI_RAPI_CA_FILE",
                "GANETI_RAPI_FINGERPRINT",
                "GANETI_OPERATOR_STORE",
            ] {
                command.env_remove(name);
            }
            command.env("GANETI_RAPI_PASSWORD", "pw");
            adjust(command);
        },
    );
    (daemon, rapi, ws)
}

/// Whether the server closed `stream`, polling for up to `within`.
fn closed_within(
    stream: &mut TcpStream,
    within: Duration,
    mut tick: impl FnMut(&mut TcpStream),
) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => tick(stream),
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_disconnected_within_the_header_timeout() {
    let (daemon, _rapi, _ws) = daemon_with(FAST_LIMITS, |_| {}).await;
    // A bound on waiting for the close, not a measure: the header timeout is 1 s.
    let limit = Duration::from_secs(60);

    // Slowloris: a request head that never ends, one header byte at a time.
    let mut slow = TcpStream::connect(&daemon.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let trickled = closed_within(&mut slow, limit, |s| {
        let _ = s.write_all(b"a");
    });
    assert!(trickled, "a client trickling its headers was kept open");

    // Silent: connects and sends nothing.
    let mut silent = TcpStream::connect(&daemon.addr).unwrap();
    assert!(
        closed_within(&mut silent, limit, |_| {}),
        "a silent client was kept open"
    );

    // Idle keep-alive: one request answered, then nothing.
    let mut idle = TcpStream::connect(&daemon.addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        closed_within(&mut idle, limit, |_| {}),
        "an idle keep-alive connection was kept open"
    );

    // The daemon itself is fine.
    assert_eq!(daemon.get("/healthz").map(|(code, _)| code), Some(200));
}

/// Keeps `count` idle connections open to `addr`, reopening those the server closes,
/// until `stop`; `opened` counts every connection made.
fn flood(
    addr: String,
    count: usize,
    opened: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut open: Vec<TcpStream> = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            open.retain(still_open);
            while open.len() < count {
                match TcpStream::connect(&addr) {
                    Ok(s) => {
                        open.push(s);
                        opened.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => break,
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Open and silent: reading would block.
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    matches!(stream.peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Silent connections at the cap are closed by the first-byte timeout, not held for the
/// header timeout: with the header timeout at a day, `/healthz` behind them can only answer
/// because the first-byte timeout freed their slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_at_the_cap_do_not_hold_healthz_for_the_header_timeout() {
    let (daemon, _rapi, _ws) = daemon_with(
        &[
            "--http-max-connections",
            "5",
            "--http-header-timeout",
            "24h",
        ],
        |_| {},
    )
    .await;
    let silent: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(&daemon.addr).unwrap())
        .collect();
    daemon.wait_for(
        "/healthz behind the silent connections",
        Duration::from_secs(60),
        |d| d.get("/healthz").is_some_and(|(code, _)| code == 200),
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_flood_under_a_low_descriptor_limit_starves_neither_healthz_nor_the_rapi() {
    let (daemon, rapi, _ws) = daemon_with(FAST_LIMITS, |command| {
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 160,
                    rlim_max: 160,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let flooder = flood(daemon.addr.clone(), 400, opened.clone(), stop.clone());
    // The flood is in place: all 400 connected (past the listener's cap, the kernel queues).
    daemon.wait_for(
        "the flood's 400 connections",
        Duration::from_secs(60),
        |_| opened.load(Ordering::SeqCst) >= 400,
    );

    // A reload reaches the RAPI: the listener left descriptors for it.
    let before = rapi.received().len();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    daemon.wait_for("the reload's RAPI calls", Duration::from_secs(20), |_| {
        rapi.received().len() > before
    });
    // /healthz answers despite the flood: idle connections time out and free their slots.
    daemon.wait_for("/healthz under the flood", Duration::from_secs(60), |d| {
        d.get("/healthz").is_some_and(|(code, _)| code == 200)
    });
    // The daemon closes idle connections, and the flood reopens them: a condition awaited,
    // not a count at a moment (how many were reopened by then depends on the machine).
    daemon.wait_for(
        "the daemon closing idle flood connections",
        Duration::from_secs(60),
        |_| opened.load(Ordering::SeqCst) > 400,
    );
    stop.store(true, Ordering::SeqCst);
    flooder.join().unwrap();
    let log = daemon.log();
    assert!(
        !log.contains("Too many open files"),
        "the daemon ran out of descriptors:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_intervals_and_timeouts_that_parse_do_not_crash_the_daemon() {
    // Durations are capped at 24h when parsed; anything longer is refused with that cap.
    let largest = "24h".to_owned();
    let (daemon, rapi, _ws) = daemon_with(
        &[
            "--resync-interval",
            &largest,
            "--http-header-timeout",
            &largest,
            "--http-request-timeout",
            &largest,
            "--shutdown-grace",
            &largest,
        ],
        |_| {},
    )
    .await;
    // The first reconcile ends (against the refusing fake) and the next resync is
    // scheduled: that addition used to panic.
    daemon.wait_for("the first reconcile", Duration::from_secs(20), |d| {
        d.reconciles() >= 1
    });
    let before = rapi.received().len();
    std::process::Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .unwrap();
    daemon.wait_for("a second reconcile", Duration::from_secs(20), |d| {
        d.reconciles() >= 2
    });
    assert!(rapi.received().len() > before);
    assert_eq!(daemon.get("/healthz").map(|(code, _)| code), Some(200));
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0), "{log}");
}

#[test]
fn a_blank_webhook_secret_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [("empty", ""), ("blank", " \n\t\n")] {
        let secret = dir.path().join(name);
        std::fs::write(&secret, content).unwrap();
        // A clean environment: with the sandbox's settings inherited, a daemon that
        // accepted the secret would start and never return.
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .args(["run", "--dir", "desired-state", "--listen", "127.0.0.1:0"])
            .arg("--webhook-secret-file")
            .arg(&secret)
            .current_dir(common::project_root())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("webhook secret file") && stderr.contains("empty or only whitespace"),
            "{name}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_the_store_read_only_beside_its_listener() {
    let store = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(store.path().join("boot")).unwrap();
    std::fs::write(store.path().join("boot/chain.ipxe"), "#!ipxe\n").unwrap();
    let addr = format!("127.0.0.1:{}", common::daemon::free_port());
    let (daemon, _rapi, _ws) = daemon_with(
        &[
            "--store",
            store.path().to_str().unwrap(),
            "--serve-store",
            &addr,
        ],
        |_| {},
    )
    .await;
    let fetch = |path: &str| {
        let mut stream = TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    let started = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the store server never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let chain = fetch("/boot/chain.ipxe");
    assert!(
        chain.starts_with("HTTP/1.1 200") && chain.ends_with("#!ipxe\n"),
        "{chain}"
    );
    assert!(fetch("/../../etc/passwd").starts_with("HTTP/1.1 404"));
    assert!(fetch("/boot/").starts_with("HTTP/1.1 404"), "no listing");
    // A thread reads the daemon's stderr: the line is waited for, never raced.
    daemon.wait_for("the access log line", Duration::from_secs(30), |d| {
        d.log().contains("GET /boot/chain.ipxe 200")
    });
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
}
