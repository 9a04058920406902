//! `image import`, `image verify`, `image list` and gc on build results laid out as
//! `nix build` lays them out.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Output;

use ganeti_operator::store::pointer::{Mac, PointerSpec, render};
use ganeti_operator::store::{Store, StoreFile, catalog};

fn image(store: &Path, args: &[&str]) -> Output {
    let mut all = vec!["image"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--store", store.to_str().unwrap()]);
    common::operator(&all)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn imported_id(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    let text = stdout(output);
    text.split_whitespace()
        .find(|w| w.starts_with("sha256-"))
        .unwrap_or_else(|| panic!("no id in {text}"))
        .to_owned()
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn importing_a_nix_result_twice_gives_one_id_and_copies_nothing_the_second_time() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store-dir");
    let result =
        common::nix_result::kexec_tree(work.path(), "A", &bytes(1, 3 << 20), &bytes(2, 1 << 20));

    let first = image(
        &store,
        &["import", "--class", "web", result.to_str().unwrap()],
    );
    let id = imported_id(&first);
    assert!(
        stdout(&first).contains(&format!("image: {id}")),
        "prints the line that pins it"
    );
    let dir = store.join("images").join(&id);
    let kernel = dir.join("bzImage");
    assert_eq!(std::fs::read(&kernel).unwrap(), bytes(1, 3 << 20));
    assert!(
        std::fs::symlink_metadata(&kernel)
            .unwrap()
            .file_type()
            .is_file(),
        "a copy, not a link"
    );
    let manifest = Store::open(&store).unwrap().manifest(&id).unwrap();
    assert_eq!(manifest.kind.name(), "kexec-tree");
    assert!(
        manifest.cmdline.starts_with("init=/nix/store/"),
        "{}",
        manifest.cmdline
    );
    assert!(
        manifest.cmdline.ends_with("/init loglevel=4"),
        "initrd= is dropped: {}",
        manifest.cmdline
    );
    let before = std::fs::metadata(&kernel).unwrap();

    let second = image(
        &store,
        &["import", "--class", "web", result.to_str().unwrap()],
    );
    assert_eq!(imported_id(&second), id);
    assert!(
        stdout(&second).contains("nothing copied"),
        "{}",
        stdout(&second)
    );
    let after = std::fs::metadata(&kernel).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );

    // The same files given one by one, with the same command line, are the same image.
    let tree = std::fs::canonicalize(&result).unwrap();
    let explicit = image(
        &store,
        &[
            "import",
            "--class",
            "web",
            "--kernel",
            tree.join("bzImage").to_str().unwrap(),
            "--initrd",
            tree.join("initrd").to_str().unwrap(),
            "--cmdline",
            &manifest.cmdline,
        ],
    );
    assert_eq!(imported_id(&explicit), id);

    // A different initrd is a different image; nothing half-imported is left around.
    let b =
        common::nix_result::kexec_tree(work.path(), "B", &bytes(1, 3 << 20), &bytes(3, 1 << 20));
    let id_b = imported_id(&image(
        &store,
        &["import", "--class", "web", b.to_str().unwrap()],
    ));
    assert_ne!(id_b, id);
    let names: Vec<String> = std::fs::read_dir(store.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("sha256-")), "{names:?}");

    let list = stdout(&image(&store, &["list"]));
    assert!(
        list.contains(&id) && list.contains(&id_b) && list.contains("web"),
        "{list}"
    );
}

#[test]
fn a_netboot_result_with_a_squashfs_is_imported_whole() {
    let work = tempfile::tempdir().unwrap();
    let result = work.path().join("result");
    std::fs::create_dir_all(&result).unwrap();
    std::fs::write(result.join("bzImage"), bytes(5, 4096)).unwrap();
    std::fs::write(result.join("initrd"), bytes(6, 4096)).unwrap();
    std::fs::write(result.join("nix-store.squashfs"), bytes(7, 1 << 20)).unwrap();
    std::fs::write(
        result.join("netboot.ipxe"),
        "#!ipxe\nkernel ${base-url}/bzImage init=/nix/store/s/init initrd=initrd\n",
    )
    .unwrap();
    let store = work.path().join("s");
    let id = imported_id(&image(
        &store,
        &["import", "--class", "navidrome", result.to_str().unwrap()],
    ));
    let manifest = Store::open(&store).unwrap().manifest(&id).unwrap();
    assert_eq!(manifest.kind.name(), "netboot");
    assert!(manifest.has("root.squashfs"));
    assert_eq!(manifest.cmdline, "init=/nix/store/s/init");
}

#[test]
fn verify_names_a_corrupt_file() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("s");
    let result = common::nix_result::kexec_tree(work.path(), "A", &bytes(1, 8192), &bytes(2, 8192));
    let id = imported_id(&image(
        &store,
        &["import", "--class", "web", result.to_str().unwrap()],
    ));
    let clean = image(&store, &["verify"]);
    assert!(clean.status.success(), "{clean:?}");

    let initrd = store.join("images").join(&id).join("initrd");
    let mut data = std::fs::read(&initrd).unwrap();
    data[100] ^= 0xff;
    std::fs::write(&initrd, data).unwrap();
    let corrupt = image(&store, &["verify"]);
    assert_eq!(corrupt.status.code(), Some(1));
    let text = stdout(&corrupt);
    assert!(
        text.contains(&format!("CORRUPT {id}")) && text.contains("initrd: SHA-256"),
        "{text}"
    );
    assert!(
        text.contains("`ganeti-operator image import` of the same build repairs one"),
        "{text}"
    );

    // Importing the same build again repairs it, where it once said "nothing copied".
    let again = image(
        &store,
        &["import", "--class", "web", result.to_str().unwrap()],
    );
    assert!(again.status.success(), "{again:?}");
    let text = stdout(&again);
    assert!(
        text.contains("was in the store but corrupt; repaired") && text.contains("initrd: SHA-256"),
        "{text}"
    );
    let repaired = image(&store, &["verify"]);
    assert!(repaired.status.success(), "{repaired:?}");
    let leftovers: Vec<_> = std::fs::read_dir(store.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn gc_keeps_what_is_pinned_booted_or_newest_and_removes_the_rest() {
    let work = tempfile::tempdir().unwrap();
    let store_dir = work.path().join("s");
    let mut ids = Vec::new();
    for label in ["A", "B", "C", "D", "E"] {
        let result =
            common::nix_result::kexec_tree(work.path(), label, &bytes(1, 4096), label.as_bytes());
        ids.push(imported_id(&image(
            &store_dir,
            &["import", "--class", "web", result.to_str().unwrap()],
        )));
        // Import times decide "newest"; they have a one-second resolution.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let store = Store::open(&store_dir).unwrap();
    // D is booted by a host through its pointer; A is pinned; E is the newest unused.
    let d = store.manifest(&ids[3]).unwrap();
    let mac = Mac::parse("aa:00:00:00:00:01").unwrap();
    let pointer = render(&PointerSpec {
        base_url: "http://s",
        host: "web1",
        mac: Some(mac),
        image: &d,
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

    let dry = catalog::gc(&store, 1, &in_use, true).unwrap();
    assert_eq!(dry.removed, vec![ids[2].clone(), ids[1].clone()]);
    assert_eq!(
        store.image_ids().unwrap().len(),
        5,
        "a dry run removes nothing"
    );

    let report = catalog::gc(&store, 1, &in_use, false).unwrap();
    assert_eq!(report.removed, dry.removed);
    let left = store.image_ids().unwrap();
    let expected: std::collections::BTreeSet<String> =
        [&ids[0], &ids[3], &ids[4]].into_iter().cloned().collect();
    assert_eq!(left, expected);
    assert!(
        !store
            .local_root()
            .unwrap()
            .join("images")
            .join(&ids[1])
            .exists()
    );
}

#[test]
fn with_a_store_a_class_must_pin_an_imported_image() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("s");
    let result = common::nix_result::kexec_tree(work.path(), "A", &bytes(1, 4096), &bytes(2, 4096));
    let id = imported_id(&image(
        &store,
        &["import", "--class", "web", result.to_str().unwrap()],
    ));
    let desired = work.path().join("desired");
    std::fs::create_dir(&desired).unwrap();
    let missing = format!("sha256-{}", "e".repeat(64));
    let yaml = format!(
        "cluster: {{name: c.test, hypervisor: fake, store: {{baseUrl: \"http://10.0.0.1:8080\"}}}}\nclasses:\n  web:\n    image: {id}\n  db:\n    image: {missing}\nnodes:\n  n1.test: {{class: web, role: master}}\n"
    );
    std::fs::write(desired.join("state.yaml"), yaml).unwrap();
    let output = common::operator(&[
        "validate",
        desired.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("image `{missing}` is not in the artifact store")),
        "{text}"
    );
    assert!(
        text.contains("state.yaml:6:12"),
        "located at db's image: {text}"
    );
    assert!(
        text.contains("ganeti-operator image import --class db"),
        "{text}"
    );
    assert!(
        !text.contains(&format!("image `{id}`")),
        "web's image is in the store: {text}"
    );
    // Without a store the same state validates: the store is local to the operator.
    assert!(
        common::operator(&["validate", desired.to_str().unwrap()])
            .status
            .success()
    );
}
