//! The netboot harness (tests/harness/netboot.sh) from tests: its guest images, health
//! checks from inside the node namespaces, captured consoles, and the store served to the
//! VMs by the built-in server or by nginx.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::project_root;

pub struct Netboot {
    /// Where `netboot.sh images` laid out result-A, result-B and result-C.
    pub images: PathBuf,
    /// Where the store server must listen for the VMs' forwarders to reach it.
    pub store_addr: String,
    pub base_url: String,
}

/// The harness, or `None` locally without it (tests say SKIPPED); under CI a missing
/// harness fails the test.
pub fn netboot(test: &str) -> Option<Netboot> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(images) = var("GANETI_NETBOOT_IMAGES") else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{test}: needs the netboot harness, but GANETI_NETBOOT_IMAGES is not set (tests/run.sh runs `netboot.sh up`)"
            );
        }
        eprintln!(
            "SKIPPED {test}: no netboot harness (run `tests/harness/netboot.sh up` and eval its `env`)"
        );
        return None;
    };
    Some(Netboot {
        images: images.into(),
        store_addr: var("GANETI_NETBOOT_STORE_ADDR").unwrap_or_else(|| "10.221.0.1:8480".into()),
        base_url: var("GANETI_NETBOOT_BASE_URL").unwrap_or_else(|| "http://10.222.0.1:8080".into()),
    })
}

fn harness() -> PathBuf {
    project_root().join("tests/harness/netboot.sh")
}

impl Netboot {
    pub fn result(&self, label: &str) -> PathBuf {
        self.images.join(format!("result-{label}"))
    }

    /// The body of the VM's `/health`, when it answers 2xx.
    pub fn health(&self, mac: &str) -> Option<String> {
        let output = Command::new(harness())
            .args(["health", mac])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Waits until `/health` names `image`; panics with the console log otherwise.
    pub fn wait_healthy(
        &self,
        instance: &str,
        mac: &str,
        image: &str,
        within: Duration,
    ) -> Duration {
        let started = Instant::now();
        let want = format!("IMAGE={image}");
        let mut last = None;
        while started.elapsed() < within {
            last = self.health(mac);
            if last.as_deref().is_some_and(|b| b.contains(&want)) {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "{instance} ({mac}) did not report {want} within {within:?}; last answer: {last:?}\nconsole:\n{}",
            self.console(instance)
        );
    }

    /// How many times the VM's kernel started, from its captured console.
    pub fn boots(&self, instance: &str) -> usize {
        self.console(instance).matches("Linux version").count()
    }

    pub fn console(&self, instance: &str) -> String {
        Command::new(harness())
            .args(["console", instance])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

/// A store server process, stopped (by its PID) when dropped.
pub struct StoreServer {
    child: Child,
    pub access_log: PathBuf,
}

impl StoreServer {
    /// `ganeti-operator store serve`, its access log being its stderr.
    pub fn builtin(store: &Path, addr: &str, logs: &Path) -> StoreServer {
        let access_log = logs.join("builtin-access.log");
        let child = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .args([
                "store",
                "serve",
                "--listen",
                addr,
                "--store",
                store.to_str().unwrap(),
            ])
            .env("NO_COLOR", "1")
            .env("GANETI_OPERATOR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&access_log).unwrap())
            .spawn()
            .unwrap();
        let server = StoreServer { child, access_log };
        server.wait_listening(addr);
        server
    }

    /// Debian's nginx serving the same tree with the configuration docs/nginx.md gives.
    pub fn nginx(store: &Path, addr: &str, logs: &Path) -> StoreServer {
        let prefix = logs.join("nginx");
        let access_log = prefix.join("access.log");
        let site = super::nginx::read_site(store, addr, &access_log);
        let child = super::nginx::spawn(&prefix, &site, &[addr]);
        StoreServer { child, access_log }
    }

    fn wait_listening(&self, addr: &str) {
        let started = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no store server on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        super::nginx::stop(&mut self.child);
    }
}

/// What one host's `/health` said in one round: the value of its `IMAGE=` line, or a short
/// reason it gave none (`connect: ...`, `timeout`, `HTTP 404`, `no IMAGE=`, ...).
pub type Answer = Result<String, String>;

/// One round of a [`HealthSampler`]: when it started (since the sampler's start) and one
/// answer per host, in the order the hosts were given.
#[derive(Clone, Debug)]
pub struct Round {
    pub at: Duration,
    /// How long the round took (its slowest host).
    pub took: Duration,
    pub answers: Vec<Answer>,
}

/// Polls `GET http://<host>/health` on every host every `interval` from a background
/// thread, all hosts of a round in parallel, each over a fresh `std::net::TcpStream`
/// (HTTP/1.0, `Connection: close`, connect and read timeouts of 200 ms): cheap enough for
/// 4 hosts every 250 ms. From the host namespace the VMs' names resolve through the
/// `/etc/hosts` block `netboot.sh up`'s hosts sync keeps (alias -> forwarder -> VM).
/// A host may carry a port (`127.0.0.1:8080`); without one it is port 80.
pub struct HealthSampler {
    hosts: Vec<String>,
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Vec<Round>>,
}

/// Every round a [`HealthSampler`] recorded.
#[derive(Clone, Debug)]
pub struct Samples {
    pub hosts: Vec<String>,
    pub rounds: Vec<Round>,
}

impl HealthSampler {
    /// Each probe within [`PROBE_TIMEOUT`]: a round keeps the interval's cadence.
    pub fn start(hosts: &[&str], interval: Duration) -> HealthSampler {
        HealthSampler::start_with_timeout(hosts, interval, PROBE_TIMEOUT)
    }

    /// As [`HealthSampler::start`], each probe within `timeout` (rounds take up to it).
    pub fn start_with_timeout(
        hosts: &[&str],
        interval: Duration,
        timeout: Duration,
    ) -> HealthSampler {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let polled = hosts.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut rounds = Vec::new();
            let mut next = started;
            loop {
                let at = started.elapsed();
                let answers = std::thread::scope(|s| {
                    let asks: Vec<_> = polled
                        .iter()
                        .map(|h| s.spawn(move || ask_health_within(h, timeout)))
                        .collect();
                    asks.into_iter().map(|a| a.join().unwrap()).collect()
                });
                let took = started.elapsed() - at;
                rounds.push(Round { at, took, answers });
                // Keep the cadence; a round that overran starts the next one at once.
                next = (next + interval).max(Instant::now());
                match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return rounds,
                }
            }
        });
        HealthSampler {
            hosts,
            stop,
            thread,
        }
    }

    /// Ends the sampling (after the round in progress) and returns every round.
    pub fn stop(self) -> Samples {
        let _ = self.stop.send(());
        Samples {
            hosts: self.hosts,
            rounds: self.thread.join().expect("the sampler thread"),
        }
    }
}

/// A sampler's probe timeout by default.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// Under TCG a booting VM starves its neighbours' CPUs for a moment, so a healthy VM can
/// take a few hundred milliseconds to answer; a rebooting one does not answer for ~30 s.
pub const VM_PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// One `GET /health` within [`VM_PROBE_TIMEOUT`].
pub fn ask_health(host: &str) -> Answer {
    ask_health_within(host, VM_PROBE_TIMEOUT)
}

/// One `GET /health`: the `IMAGE=` value of a 2xx answer, or a short reason.
pub fn ask_health_within(host: &str, timeout: Duration) -> Answer {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let addr = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let addr = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or("resolve")?;
    let short = |what: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timeout".to_owned(),
        std::io::ErrorKind::ConnectionRefused => format!("{what}: refused"),
        std::io::ErrorKind::ConnectionReset => format!("{what}: reset"),
        _ => format!("{what}: {e}"),
    };
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| short("connect", e))?;
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
    let name = host.split(':').next().unwrap_or(host);
    // One write, so one segment: a server answering its first read must not get a second.
    let request = format!("GET /health HTTP/1.0\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| short("send", e))?;
    let mut raw = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut raw)
        .map_err(|e| short("read", e))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no answer")?;
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if !status.starts_with('2') {
        return Err(format!("HTTP {status}"));
    }
    body.lines()
        .find_map(|l| l.strip_prefix("IMAGE="))
        .map(|id| id.trim().to_owned())
        .ok_or_else(|| "no IMAGE=".to_owned())
}

/// One host's rounds, summed up by [`Samples::per_host`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostSummary {
    pub host: String,
    /// Rounds per image answered, by image.
    pub images: std::collections::BTreeMap<String, usize>,
    /// Rounds without an image, by reason.
    pub errors: std::collections::BTreeMap<String, usize>,
    /// The longest run of consecutive rounds without an image, and the time it spans
    /// (first failing round to the next answering one, or to the last round).
    pub longest_outage: (usize, Duration),
}

impl Samples {
    /// The most hosts, in any one round, whose answer was not one of `ok_images`: with
    /// `[from, to]` during a rotation, how many hosts were unavailable at once.
    pub fn max_not_answering_any(&self, ok_images: &[&str]) -> usize {
        self.rounds
            .iter()
            .map(|r| {
                r.answers
                    .iter()
                    .filter(|a| !a.as_ref().is_ok_and(|id| ok_images.contains(&id.as_str())))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// As [`Samples::max_not_answering_any`], counting a host as out only in rounds that
    /// belong to a run of at least `rounds` consecutive failing rounds: one slow answer
    /// is not a host taken down, a reboot is a run of ~100.
    pub fn max_out_sustained(&self, ok_images: &[&str], rounds: usize) -> usize {
        let ok = |r: &Round, i: usize| {
            r.answers[i]
                .as_ref()
                .is_ok_and(|id| ok_images.contains(&id.as_str()))
        };
        let mut out = vec![vec![false; self.hosts.len()]; self.rounds.len()];
        for i in 0..self.hosts.len() {
            let mut start = 0;
            while start < self.rounds.len() {
                if ok(&self.rounds[start], i) {
                    start += 1;
                    continue;
                }
                let mut end = start;
                while end < self.rounds.len() && !ok(&self.rounds[end], i) {
                    end += 1;
                }
                if end - start >= rounds {
                    for row in &mut out[start..end] {
                        row[i] = true;
                    }
                }
                start = end;
            }
        }
        out.iter()
            .map(|row| row.iter().filter(|o| **o).count())
            .max()
            .unwrap_or(0)
    }

    pub fn per_host(&self) -> Vec<HostSummary> {
        let mut out = Vec::new();
        for (i, host) in self.hosts.iter().enumerate() {
            let mut s = HostSummary {
                host: host.clone(),
                ..HostSummary::default()
            };
            let mut outage: Option<(usize, Duration)> = None; // (first failing round, its time)
            let close =
                |s: &mut HostSummary, from: Option<(usize, Duration)>, k: usize, at: Duration| {
                    if let Some((first, since)) = from
                        && k - first > s.longest_outage.0
                    {
                        s.longest_outage = (k - first, at - since);
                    }
                };
            for (k, r) in self.rounds.iter().enumerate() {
                match &r.answers[i] {
                    Ok(id) => {
                        *s.images.entry(id.clone()).or_default() += 1;
                        close(&mut s, outage.take(), k, r.at);
                    }
                    Err(why) => {
                        *s.errors.entry(why.clone()).or_default() += 1;
                        outage.get_or_insert((k, r.at));
                    }
                }
            }
            if let Some(last) = self.rounds.last() {
                close(&mut s, outage, self.rounds.len(), last.at);
            }
            out.push(s);
        }
        out
    }

    /// One line per host: images answered, errors, longest outage.
    pub fn summary(&self) -> String {
        let slowest = self.rounds.iter().map(|r| r.took).max().unwrap_or_default();
        let mut text = format!("{} rounds, slowest {slowest:?}\n", self.rounds.len());
        for s in self.per_host() {
            text += &format!(
                "{}: images {:?}, errors {:?}, longest outage {} rounds ({:?})\n",
                s.host, s.images, s.errors, s.longest_outage.0, s.longest_outage.1
            );
        }
        text
    }
}

/// A test's own store, desired-state, state and log directories, and the operator run
/// on them (`GANETI_OPERATOR_STORE`, `GANETI_OPERATOR_STATE_DIR`).
pub struct Workdir {
    work: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        let work = tempfile::tempdir().unwrap();
        for d in ["store", "desired", "state", "logs"] {
            std::fs::create_dir_all(work.path().join(d)).unwrap();
        }
        Workdir { work }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.work.path().join(sub)
    }

    pub fn env(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("GANETI_OPERATOR_STORE", self.path("store")),
            ("GANETI_OPERATOR_STATE_DIR", self.path("state")),
        ]
    }

    pub fn operator(&self, args: &[&str]) -> std::process::Output {
        let env = self.env();
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        super::operator_with_env(args, &env)
    }

    /// Imports guest image `label` for the netboot class; returns its id.
    pub fn import(&self, nb: &Netboot, label: &str) -> String {
        let result = nb.result(label);
        let output = self.operator(&[
            "image",
            "import",
            "--class",
            "netboot",
            result.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .find(|w| w.starts_with("sha256-"))
            .unwrap()
            .to_owned()
    }
}

/// The DHCP address each running kvm instance got, from the hosts sync's map
/// (`netboot.sh hosts`: INSTANCE ALIAS NODE MAC IP).
pub fn vm_addresses() -> std::collections::BTreeMap<String, String> {
    let out = Command::new(harness())
        .arg("hosts")
        .output()
        .expect("netboot.sh hosts");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[4] != "-").then(|| (f[0].to_owned(), f[4].to_owned()))
        })
        .collect()
}

/// A VM's `GET /health` until `deadline`: by name through the hosts sync, else at `ip`
/// from inside each node's namespace (`ip netns exec gnt-nN curl`), `nodes` in the order
/// given. After a live migration the hosts sync's forwarder follows the VM only once the
/// source QEMU has exited; the VM itself answers on its new node's bridge at once.
pub fn ask_vm_health(host: &str, ip: &str, nodes: &[&str], deadline: Duration) -> Answer {
    let until = Instant::now() + deadline;
    let mut last = Err("not asked".to_owned());
    while Instant::now() < until {
        last = ask_health_within(host, Duration::from_millis(500));
        if last.is_ok() {
            return last;
        }
        for n in nodes {
            if Instant::now() >= until {
                break;
            }
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &format!("gnt-{n}"),
                    "curl",
                    "-s",
                    "-m",
                    "0.5",
                ])
                .args(["-f", &format!("http://{ip}/health")])
                .output();
            if let Ok(out) = out
                && out.status.success()
            {
                let body = String::from_utf8_lossy(&out.stdout);
                if let Some(id) = body.lines().find_map(|l| l.strip_prefix("IMAGE=")) {
                    return Ok(id.trim().to_owned());
                }
            }
        }
    }
    last
}
