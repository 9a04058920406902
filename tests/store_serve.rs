//! The built-in store server over real TCP: Range, ETag and If-Modified-Since answers,
//! and every way of reaching outside the store refused. Requests are written by hand so
//! that no client normalises a hostile path before it is sent.

use std::path::Path;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn request(addr: std::net::SocketAddr, head: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}\r\nHost: store\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a full head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

async fn start(root: &Path) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let root = root.to_owned();
    tokio::spawn(async move {
        ganeti_operator::store::serve::serve(listener, &root, Default::default())
            .await
            .unwrap();
    });
    addr
}

fn layout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("images/sha256-x")).unwrap();
    std::fs::create_dir_all(root.join("boot")).unwrap();
    std::fs::write(
        root.join("images/sha256-x/root.squashfs"),
        b"0123456789abcdef",
    )
    .unwrap();
    std::fs::write(root.join("boot/aa-00-00-00-00-01.ipxe"), b"#!ipxe\nboot\n").unwrap();
    std::fs::write(root.join(".lock"), b"").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("boot/escape.ipxe")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
    dir
}

#[tokio::test]
async fn whole_files_ranges_and_conditional_requests() {
    let dir = layout();
    let addr = start(dir.path()).await;
    let whole = request(addr, "GET /images/sha256-x/root.squashfs HTTP/1.1").await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, b"0123456789abcdef");
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert!(whole.header("cache-control").unwrap().contains("immutable"));
    let etag = whole.header("etag").unwrap().to_owned();
    let modified = whole.header("last-modified").unwrap().to_owned();

    let part = request(
        addr,
        "GET /images/sha256-x/root.squashfs HTTP/1.1\r\nRange: bytes=2-5",
    )
    .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body, b"2345");
    assert_eq!(part.header("content-range"), Some("bytes 2-5/16"));
    let tail = request(
        addr,
        "GET /images/sha256-x/root.squashfs HTTP/1.1\r\nRange: bytes=-3",
    )
    .await;
    assert_eq!((tail.status, tail.body.as_slice()), (206, &b"def"[..]));
    let beyond = request(
        addr,
        "GET /images/sha256-x/root.squashfs HTTP/1.1\r\nRange: bytes=16-",
    )
    .await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */16"));
    let stale = request(
        addr,
        "GET /images/sha256-x/root.squashfs HTTP/1.1\r\nRange: bytes=0-1\r\nIf-Range: \"other\"",
    )
    .await;
    assert_eq!(
        (stale.status, stale.body.len()),
        (200, 16),
        "a stale If-Range gets the whole file"
    );

    let fresh = request(
        addr,
        &format!("GET /images/sha256-x/root.squashfs HTTP/1.1\r\nIf-None-Match: {etag}"),
    )
    .await;
    assert_eq!(fresh.status, 304);
    assert!(fresh.body.is_empty());
    let other = request(
        addr,
        "GET /images/sha256-x/root.squashfs HTTP/1.1\r\nIf-None-Match: \"nope\"",
    )
    .await;
    assert_eq!(other.status, 200);
    let since = request(
        addr,
        &format!("GET /images/sha256-x/root.squashfs HTTP/1.1\r\nIf-Modified-Since: {modified}"),
    )
    .await;
    assert_eq!(since.status, 304);

    let head = request(addr, "HEAD /boot/aa-00-00-00-00-01.ipxe HTTP/1.1").await;
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("12"))
    );
    assert_eq!(
        head.header("cache-control"),
        Some("no-cache"),
        "pointers change"
    );
    let post = request(
        addr,
        "POST /boot/aa-00-00-00-00-01.ipxe HTTP/1.1\r\nContent-Length: 0",
    )
    .await;
    assert_eq!(post.status, 405);

    // A pointer replaced atomically is served new, with a new ETag.
    let before = request(addr, "GET /boot/aa-00-00-00-00-01.ipxe HTTP/1.1").await;
    ganeti_operator::atomic_file::write_atomic(
        &dir.path().join("boot/aa-00-00-00-00-01.ipxe"),
        b"#!ipxe\nexit\n",
        0o644,
    )
    .unwrap();
    let after = request(addr, "GET /boot/aa-00-00-00-00-01.ipxe HTTP/1.1").await;
    assert_eq!(after.body, b"#!ipxe\nexit\n");
    assert_ne!(before.header("etag"), after.header("etag"));
}

#[tokio::test]
async fn nothing_outside_the_store_and_no_listing() {
    let dir = layout();
    let addr = start(dir.path()).await;
    for target in [
        "/../../../../etc/passwd",
        "/images/../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/images/..%2f..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/etc/passwd",
        "http://store/../etc/passwd",
        "/boot/escape.ipxe",
        "/etc-link/passwd",
        "/.lock",
        "/boot/aa-00-00-00-00-01.ipxe%00.png",
        "/images\\..\\..\\etc\\passwd",
        "/",
        "/images/",
        "/images/sha256-x",
    ] {
        let reply = request(addr, &format!("GET {target} HTTP/1.1")).await;
        assert!(
            reply.status == 404 || reply.status == 400,
            "{target}: {} {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        assert!(
            !String::from_utf8_lossy(&reply.body).contains("root:"),
            "{target} leaked /etc/passwd"
        );
    }
}
