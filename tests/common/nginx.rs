//! Debian's nginx as a child process, running the server blocks the docs give
//! (docs/nginx-store.conf, the hosts' read-only view; docs/nginx-store-dav.conf, the
//! operator's WebDAV write location) with their addresses and paths substituted.
//! Standalone (std only), so that benches include it too.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn docs(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name),
    )
    .unwrap()
}

/// docs/nginx-store.conf, serving `store` read-only on `addr`.
pub fn read_site(store: &Path, addr: &str, access_log: &Path) -> String {
    docs("nginx-store.conf")
        .replace("listen 8480;", &format!("listen {addr};"))
        .replace("/var/lib/ganeti-operator/store", store.to_str().unwrap())
        .replace(
            "/var/log/nginx/ganeti-store.access.log",
            access_log.to_str().unwrap(),
        )
}

/// Starts nginx with `sites` inside its `http {}`, from the prefix directory `prefix`,
/// and waits until every address in `listening` accepts connections.
pub fn spawn(prefix: &Path, sites: &str, listening: &[&str]) -> Child {
    std::fs::create_dir_all(prefix.join("tmp")).unwrap();
    let conf = format!(
        // The test's store lives in a private temporary directory: the worker reads it as root.
        "daemon off;\nuser root;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{}}\nhttp {{\n  client_body_temp_path {p}/tmp;\n  proxy_temp_path {p}/tmp;\n  fastcgi_temp_path {p}/tmp;\n  uwsgi_temp_path {p}/tmp;\n  scgi_temp_path {p}/tmp;\n  types {{ text/plain ipxe; application/json json; }}\n  default_type application/octet-stream;\n{sites}\n}}\n",
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
    for addr in listening {
        wait_listening(addr);
    }
    child
}

pub fn wait_listening(addr: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM lets nginx's master stop its worker too.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A free port on 127.0.0.1 (bound, then released for nginx to take).
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// A store served by nginx twice: read-only for hosts (`read_addr`) and through the
/// authenticated WebDAV location over TLS for the operator (`url`), on one directory.
pub struct DavStore {
    child: Child,
    pub store: PathBuf,
    pub url: String,
    pub read_addr: String,
    /// `sha256 Fingerprint=…` of the server's self-signed certificate.
    pub fingerprint: String,
    /// The CA that signed the server's certificate, for `--store-ca-file`.
    pub certificate: PathBuf,
    /// `user:password`, as the operator reads it.
    pub credentials_file: PathBuf,
    pub dav_log: PathBuf,
    pub read_log: PathBuf,
}

pub const USER: &str = "operator";
pub const PASSWORD: &str = "s3cret-dav-pass";

impl DavStore {
    /// Everything under `work`: the store, nginx's prefix, the certificate and passwords.
    pub fn start(work: &Path) -> DavStore {
        DavStore::serving(work, &work.join("store"))
    }

    /// The store directory `store` served; the rest under `work`.
    pub fn serving(work: &Path, store: &Path) -> DavStore {
        let store = store.to_owned();
        let prefix = work.join("nginx");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(&prefix).unwrap();
        let (crt, key) = (prefix.join("dav.crt"), prefix.join("dav.key"));
        let certificate = issue_certificate(&prefix, &crt, &key);
        let fingerprint = run(Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&crt))
        .trim()
        .to_owned();
        let hash = run(Command::new("openssl").args(["passwd", "-apr1", PASSWORD]));
        let htpasswd = prefix.join("htpasswd");
        std::fs::write(&htpasswd, format!("{USER}:{}", hash.trim())).unwrap();
        let credentials_file = work.join("store-credentials");
        std::fs::write(&credentials_file, format!("{USER}:{PASSWORD}\n")).unwrap();
        let (dav_addr, read_addr) = (free_addr(), free_addr());
        let (dav_log, read_log) = (
            prefix.join("dav-access.log"),
            prefix.join("read-access.log"),
        );
        let dav_site = docs("nginx-store-dav.conf")
            .replace("listen 8481 ssl;", &format!("listen {dav_addr} ssl;"))
            .replace("/etc/nginx/ganeti-store-dav.crt", crt.to_str().unwrap())
            .replace("/etc/nginx/ganeti-store-dav.key", key.to_str().unwrap())
            .replace(
                "/etc/nginx/ganeti-store-dav.htpasswd",
                htpasswd.to_str().unwrap(),
            )
            .replace("/var/lib/ganeti-operator/store", store.to_str().unwrap())
            .replace(
                "/var/log/nginx/ganeti-store-dav.access.log",
                dav_log.to_str().unwrap(),
            );
        let sites = format!("{}\n{dav_site}", read_site(&store, &read_addr, &read_log));
        let child = spawn(&prefix, &sites, &[&dav_addr, &read_addr]);
        DavStore {
            child,
            store,
            url: format!("https://{dav_addr}/"),
            read_addr,
            fingerprint,
            certificate,
            credentials_file,
            dav_log,
            read_log,
        }
    }

    /// The flags that point the operator at this store.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--store-url".into(),
            self.url.clone(),
            "--store-credentials-file".into(),
            self.credentials_file.display().to_string(),
            "--store-fingerprint".into(),
            self.fingerprint.clone(),
        ]
    }

    /// The WebDAV location's access log, one line per request.
    pub fn dav_requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.dav_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A test CA and the server's certificate it signs (for 127.0.0.1); returns the CA's
/// certificate.
fn issue_certificate(dir: &Path, crt: &Path, key: &Path) -> PathBuf {
    let (ca_crt, ca_key, csr, ext) = (
        dir.join("ca.crt"),
        dir.join("ca.key"),
        dir.join("dav.csr"),
        dir.join("dav.ext"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=store test CA"])
        .args(ec)
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca_crt)
        .stderr(Stdio::null()));
    run(Command::new("openssl")
        .args(["req", "-subj", "/CN=127.0.0.1"])
        .args(ec)
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(&csr)
        .stderr(Stdio::null()));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca_crt)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(crt)
        .stderr(Stdio::null()));
    ca_crt
}

impl DavStore {
    /// The WebDAV location's PUT, MOVE and DELETE requests.
    pub fn write_requests(&self) -> Vec<String> {
        self.dav_requests()
            .into_iter()
            .filter(|l| {
                ["\"PUT ", "\"MOVE ", "\"DELETE "]
                    .iter()
                    .any(|m| l.contains(m))
            })
            .collect()
    }
}

impl Drop for DavStore {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
