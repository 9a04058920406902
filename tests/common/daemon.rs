//! A `ganeti-operator run` process for tests: started on a free local port, asked for its
//! status over plain HTTP, stopped with a signal, its stderr kept.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Daemon {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    /// `source` are the source flags (`--dir D` or `--git-repo R ...`).
    pub fn start(source: &[&str], state_dir: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_with(source, state_dir, extra, |_| {})
    }

    /// As [`Daemon::start`], with the command adjusted first (environment, limits).
    pub fn start_with(
        source: &[&str],
        state_dir: &Path,
        extra: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Daemon {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"));
        command
            .arg("run")
            .args(source)
            .args(["--listen", &addr])
            .args(extra)
            .env("GANETI_OPERATOR_STATE_DIR", state_dir)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        adjust(&mut command);
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let daemon = Daemon { child, addr, log };
        daemon.wait_for("the daemon to listen", Duration::from_secs(20), |d| {
            d.get("/healthz").is_some_and(|(code, _)| code == 200)
        });
        daemon
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (status code, body) of a GET, or `None` if nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request("GET", path, &[], b"")
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(&self.addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let mut head = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let code = answer.split_whitespace().nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((code, body))
    }

    pub fn status(&self) -> Value {
        let (code, body) = self.get("/status").expect("the daemon answers /status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn reconciles(&self) -> u64 {
        self.status()["reconciles"].as_u64().unwrap()
    }

    /// Polls until `done` holds, or fails the test with the daemon's log.
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&Daemon) -> bool) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out after {timeout:?} waiting for {what}; daemon log:\n{}",
            self.log()
        );
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn terminate(mut self, timeout: Duration) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!(
            "the daemon did not stop within {timeout:?}; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
