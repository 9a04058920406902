//! Build results laid out as `nix build` lays them out: real files in store paths, a
//! kexecTree of symlinks into them, and `result` a symlink to the tree.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Writes `<root>/store/…` and `<root>/result-<label>`, returns the result link.
pub fn kexec_tree(root: &Path, label: &str, kernel: &[u8], initrd: &[u8]) -> PathBuf {
    let store = root.join("store");
    let linux = store.join(format!("{}-linux-6.1", hash("linux", label)));
    let ramdisk = store.join(format!("{}-initrd-{label}", hash("initrd", label)));
    let tree = store.join(format!("{}-kexec-tree-{label}", hash("tree", label)));
    for dir in [&linux, &ramdisk, &tree] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(linux.join("bzImage"), kernel).unwrap();
    std::fs::write(ramdisk.join("initrd"), initrd).unwrap();
    symlink(linux.join("bzImage"), tree.join("bzImage")).unwrap();
    symlink(ramdisk.join("initrd"), tree.join("initrd")).unwrap();
    std::fs::write(
        tree.join("ipxe"),
        format!("#!ipxe\nkernel bzImage init=/nix/store/{}-nixos-system-{label}/init initrd=initrd loglevel=4\ninitrd initrd\nboot\n", hash("sys", label)),
    )
    .unwrap();
    std::fs::write(
        tree.join("kexec-boot"),
        "#!/bin/sh\nkexec --load ./bzImage --initrd=./initrd --command-line \"init=/x\"\nkexec -e\n",
    )
    .unwrap();
    let result = root.join(format!("result-{label}"));
    symlink(&tree, &result).unwrap();
    result
}

/// A Nix-looking 32-character hash, stable per input.
fn hash(kind: &str, label: &str) -> String {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let mut h = DefaultHasher::new();
    (kind, label).hash(&mut h);
    format!("{:016x}{:016x}", h.finish(), h.finish().rotate_left(17))
}
