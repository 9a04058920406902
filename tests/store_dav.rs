//! The store on WebDAV against real nginx (Debian's nginx-light, the blocks of
//! docs/nginx-store.conf and docs/nginx-store-dav.conf): import, a second import that
//! uploads nothing (nginx's access log is the witness), list, verify, gc, a pointer
//! rewritten while a reader fetches it, and wrong credentials.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common;
use common::nginx::{DavStore, PASSWORD};
use ganeti_operator::config::{Overrides, StoreLocation, store_location};
use ganeti_operator::store::dav::{Dav, Moved};
use ganeti_operator::store::pointer::{Mac, PointerSpec, render};
use ganeti_operator::store::{Store, StoreFile, catalog};

fn image(dav: &DavStore, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
        .arg("image")
        .args(args)
        .args(dav.args())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn imported_id(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    stdout(output)
        .split_whitespace()
        .find(|w| w.starts_with("sha256-"))
        .expect("an id")
        .trim_end_matches(':')
        .to_owned()
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The store as the operator opens it from the same flags the commands get.
fn open(dav: &DavStore) -> Store {
    let overrides = Overrides {
        store_url: Some(dav.url.clone()),
        store_credentials_file: Some(dav.credentials_file.clone()),
        store_fingerprint: Some(dav.fingerprint.clone()),
        ..Default::default()
    };
    let Some(StoreLocation::Dav(config)) = store_location(&overrides).unwrap() else {
        panic!("a WebDAV location");
    };
    Store::open_dav(config).unwrap()
}

/// A plain GET through the hosts' read-only location: (status, body).
fn get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: store\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

/// Requests in the WebDAV access log with one of these methods.
fn writes(dav: &DavStore) -> Vec<String> {
    dav.dav_requests()
        .into_iter()
        .filter(|l| {
            ["\"PUT ", "\"MOVE ", "\"DELETE "]
                .iter()
                .any(|m| l.contains(m))
        })
        .collect()
}

fn hidden_leftovers(store: &Path) -> Vec<String> {
    std::fs::read_dir(store.join("images"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn import_list_verify_over_webdav_and_a_second_import_uploads_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dav = DavStore::start(work.path());
    let initrd = bytes(2, 3 << 20);
    let result = common::nix_result::kexec_tree(work.path(), "A", &bytes(1, 4096), &initrd);
    let first = image(
        &dav,
        &["import", "--class", "web", result.to_str().unwrap()],
    );
    let id = imported_id(&first);
    assert!(stdout(&first).contains("imported"), "{}", stdout(&first));
    let puts: Vec<String> = writes(&dav);
    assert!(
        puts.iter().any(|l| l.contains("\"PUT /images/.staging-"))
            && puts.iter().any(|l| l.contains("\"MOVE /images/.staging-")),
        "uploaded under a staging name, then moved: {puts:#?}"
    );
    assert!(hidden_leftovers(&dav.store).is_empty());
    // Hosts fetch it through the read-only location.
    let (status, served) = get(&dav.read_addr, &format!("/images/{id}/initrd"));
    assert_eq!((status, served.len()), (200, initrd.len()));
    assert!(served == initrd);

    let before = writes(&dav).len();
    let second = image(
        &dav,
        &["import", "--class", "web", result.to_str().unwrap()],
    );
    assert_eq!(imported_id(&second), id);
    assert!(
        stdout(&second).contains("already in the store"),
        "{}",
        stdout(&second)
    );
    let after = writes(&dav);
    assert_eq!(
        after.len(),
        before,
        "the second import wrote nothing: {:#?}",
        &after[before..]
    );

    let list = image(&dav, &["list"]);
    assert!(
        list.status.success() && stdout(&list).contains(&id),
        "{list:?}"
    );
    let clean = image(&dav, &["verify"]);
    assert!(clean.status.success(), "{clean:?}");
    // Same size, other bytes: only re-hashing finds it.
    let on_disk = dav.store.join("images").join(&id).join("initrd");
    std::fs::write(&on_disk, bytes(9, initrd.len())).unwrap();
    let corrupt = image(&dav, &["verify"]);
    assert_eq!(corrupt.status.code(), Some(1), "{corrupt:?}");
    let text = stdout(&corrupt);
    assert!(
        text.contains(&format!("{}images/{id}/initrd: SHA-256", dav.url)),
        "{text}"
    );
}

#[test]
fn a_move_onto_an_existing_image_is_refused_and_reported_as_already_there() {
    let work = tempfile::tempdir().unwrap();
    let dav = DavStore::start(work.path());
    let config = match store_location(&Overrides {
        store_url: Some(dav.url.clone()),
        store_credentials_file: Some(dav.credentials_file.clone()),
        store_fingerprint: Some(dav.fingerprint.clone()),
        ..Default::default()
    })
    .unwrap()
    {
        Some(StoreLocation::Dav(config)) => config,
        other => panic!("{other:?}"),
    };
    let client = Dav::connect(config).unwrap();
    client.put("images/.staging-1/a", b"one").unwrap();
    assert_eq!(
        client.move_dir("images/.staging-1", "images/x").unwrap(),
        Moved::Moved
    );
    client.put("images/.staging-2/a", b"two").unwrap();
    assert_eq!(
        client.move_dir("images/.staging-2", "images/x").unwrap(),
        Moved::DestinationExists
    );
    assert_eq!(
        std::fs::read(dav.store.join("images/x/a")).unwrap(),
        b"one",
        "Overwrite: F kept the first"
    );
}

#[test]
fn gc_over_webdav_removes_only_what_nothing_uses() {
    let work = tempfile::tempdir().unwrap();
    let dav = DavStore::start(work.path());
    let mut ids = Vec::new();
    for label in ["A", "B", "C"] {
        let result =
            common::nix_result::kexec_tree(work.path(), label, &bytes(1, 4096), label.as_bytes());
        ids.push(imported_id(&image(
            &dav,
            &["import", "--class", "web", result.to_str().unwrap()],
        )));
    }
    let store = open(&dav);
    let b = store.manifest(&ids[1]).unwrap();
    let mac = Mac::parse("aa:00:00:00:00:01").unwrap();
    let pointer = render(&PointerSpec {
        base_url: "http://s",
        host: "web1",
        mac: Some(mac),
        image: &b,
        kernel_args: None,
    });
    store
        .write(&StoreFile::MacPointer(mac), Some(pointer.as_bytes()))
        .unwrap();
    let mut in_use: BTreeMap<String, String> = BTreeMap::new();
    in_use.insert(ids[0].clone(), "pinned by class web".into());
    for (id, hosts) in catalog::booted_images(&catalog::read_pointers(&store).unwrap()) {
        in_use.insert(id, format!("booted by {hosts:?}"));
    }
    let dry = catalog::gc(&store, 0, &in_use, true).unwrap();
    assert_eq!(dry.removed, vec![ids[2].clone()]);
    assert_eq!(
        store.image_ids().unwrap().len(),
        3,
        "a dry run removes nothing"
    );
    let report = catalog::gc(&store, 0, &in_use, false).unwrap();
    assert_eq!(report.removed, dry.removed);
    let left: Vec<String> = store.image_ids().unwrap().into_iter().collect();
    let mut expected = vec![ids[0].clone(), ids[1].clone()];
    expected.sort();
    assert_eq!(left, expected);
    assert!(!dav.store.join("images").join(&ids[2]).exists());
    assert!(
        writes(&dav)
            .iter()
            .any(|l| l.contains(&format!("\"DELETE /images/{}/ ", ids[2]))),
        "{:#?}",
        writes(&dav)
    );
}

#[test]
fn a_reader_never_sees_a_partial_pointer_while_it_is_rewritten() {
    let work = tempfile::tempdir().unwrap();
    let dav = DavStore::start(work.path());
    let store = open(&dav);
    // Large enough that a torn write would show: 12 KiB each, all one letter.
    let versions: Vec<Vec<u8>> = [b'a', b'b']
        .iter()
        .map(|c| {
            let mut text = b"#!ipxe\n".to_vec();
            text.extend(std::iter::repeat_n(*c, 12 * 1024));
            text
        })
        .collect();
    let file = StoreFile::NamedPointer("web1.gnt.test".into());
    store.write(&file, Some(&versions[0])).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        let addr = dav.read_addr.clone();
        let versions = versions.clone();
        std::thread::spawn(move || {
            let mut seen = [0usize; 2];
            while !done.load(Ordering::SeqCst) {
                let (status, body) = get(&addr, "/boot/by-name/web1.gnt.test.ipxe");
                assert_eq!(status, 200);
                let which = versions
                    .iter()
                    .position(|v| *v == body)
                    .unwrap_or_else(|| panic!("a partial pointer: {} bytes", body.len()));
                seen[which] += 1;
            }
            seen
        })
    };
    let rewrites = 300;
    for i in 0..rewrites {
        store.write(&file, Some(&versions[(i + 1) % 2])).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().expect("the reader saw only whole pointers");
    eprintln!("{rewrites} rewrites; the reader saw {seen:?} (a, b)");
    assert!(
        seen[0] + seen[1] >= 50,
        "the reader read while it was written: {seen:?}"
    );
}

#[test]
fn wrong_credentials_name_the_url_and_the_file_but_not_the_password() {
    let work = tempfile::tempdir().unwrap();
    let dav = DavStore::start(work.path());
    let wrong = work.path().join("wrong-credentials");
    std::fs::write(&wrong, "operator:not-the-password\n").unwrap();
    let list = |credentials: &Path, pin: &str| {
        Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .args(["image", "list", "--store-url", &dav.url])
            .arg("--store-credentials-file")
            .arg(credentials)
            .args(["--store-fingerprint", pin])
            .output()
            .unwrap()
    };
    let output = list(&wrong, &dav.fingerprint);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&dav.url)
            && stderr.contains("HTTP 401")
            && stderr.contains("wrong-credentials"),
        "{stderr}"
    );
    for secret in ["not-the-password", PASSWORD] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
    // The pinned certificate is checked: another pin is refused before any request.
    let other_pin = "00".repeat(32);
    let pinned = list(&dav.credentials_file, &other_pin);
    assert_eq!(pinned.status.code(), Some(1), "{pinned:?}");
    let stderr = String::from_utf8_lossy(&pinned.stderr);
    assert!(
        stderr.contains(&dav.url) && stderr.contains("PinMismatch"),
        "{stderr}"
    );
    // A CA file is the other way to trust it; a CA that did not sign it is refused.
    let with_ca = |ca: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .args(["image", "list", "--store-url", &dav.url])
            .arg("--store-credentials-file")
            .arg(&dav.credentials_file)
            .arg("--store-ca-file")
            .arg(ca)
            .output()
            .unwrap()
    };
    let trusted = with_ca(&dav.certificate);
    assert!(trusted.status.success(), "{trusted:?}");
    let other = DavStore::start(&work.path().join("other"));
    let refused = with_ca(&other.certificate);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
}
