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
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        let access_log = prefix.join("access.log");
        let site = std::fs::read_to_string(project_root().join("docs/nginx-store.conf"))
            .unwrap()
            .replace("listen 8480;", &format!("listen {addr};"))
            .replace("/var/lib/ganeti-operator/store", store.to_str().unwrap())
            .replace(
                "/var/log/nginx/ganeti-store.access.log",
                access_log.to_str().unwrap(),
            );
        let conf = format!(
            // The test's store lives in a private temporary directory: the worker reads it as root.
            "daemon off;\nuser root;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{}}\nhttp {{\n  client_body_temp_path {p}/tmp;\n  proxy_temp_path {p}/tmp;\n  fastcgi_temp_path {p}/tmp;\n  uwsgi_temp_path {p}/tmp;\n  scgi_temp_path {p}/tmp;\n  types {{ text/plain ipxe; application/json json; }}\n  default_type application/octet-stream;\n{site}\n}}\n",
            p = prefix.display()
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args([
                "-p",
                prefix.to_str().unwrap(),
                "-e",
                prefix.join("error.log").to_str().unwrap(),
            ])
            .args(["-c", prefix.join("nginx.conf").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx runs (tests/run.sh installs nginx-light)");
        let server = StoreServer { child, access_log };
        server.wait_listening(addr);
        server
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
        // SIGTERM lets nginx's master stop its worker too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
