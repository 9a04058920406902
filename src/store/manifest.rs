//! An image's manifest: what each file is, and the id that names the image.
//!
//! The id is `sha256-<hex>` of the content-defining part only (the files' names, sizes and
//! digests, and the kernel command line), written as canonical JSON, so importing the same
//! files again, from anywhere and at any time, gives the same id.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

pub const FILE_NAME: &str = "manifest.json";
pub const ID_PREFIX: &str = "sha256-";

/// The names image files have in the store, whatever the build called them.
pub const KERNEL: &str = "bzImage";
pub const INITRD: &str = "initrd";
pub const SQUASHFS: &str = "root.squashfs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    /// NixOS `system.build.kexecTree`: bzImage, initrd, kexec-boot, an iPXE script.
    KexecTree,
    /// A netboot result: kernel, initrd and optionally the Nix store squashfs.
    Netboot,
    /// Given file by file with `--kernel/--initrd/--squashfs`.
    Explicit,
}

impl ImageKind {
    pub fn name(self) -> &'static str {
        match self {
            ImageKind::KexecTree => "kexec-tree",
            ImageKind::Netboot => "netboot",
            ImageKind::Explicit => "explicit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub kind: ImageKind,
    /// Sorted by name.
    pub files: Vec<ManifestFile>,
    /// What the image needs on its kernel command line (NixOS: `init=/nix/store/…/init`).
    pub cmdline: String,
    /// Where it was imported from: the path as given, symlinks unresolved.
    pub source: String,
    /// The class named at import, shown by `image list`.
    pub imported_for: Option<String>,
    /// Seconds since the Unix epoch.
    pub imported_at: u64,
}

/// The part of a manifest that decides the id.
#[derive(Serialize)]
struct ContentPart<'a> {
    cmdline: &'a str,
    files: &'a [ManifestFile],
}

pub fn image_id(files: &[ManifestFile], cmdline: &str) -> String {
    let canonical =
        serde_json::to_vec(&ContentPart { cmdline, files }).expect("plain data serialises");
    format!(
        "{ID_PREFIX}{}",
        hex::encode(sha2::Sha256::digest(&canonical))
    )
}

/// `sha256-` and 64 lowercase hex digits: nothing else is ever a directory name we read
/// or a path component we build from a pointer.
pub fn is_image_id(text: &str) -> bool {
    text.strip_prefix(ID_PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Manifest {
    pub fn new(
        kind: ImageKind,
        mut files: Vec<ManifestFile>,
        cmdline: String,
        source: String,
        imported_for: Option<String>,
        imported_at: u64,
    ) -> Manifest {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Manifest {
            id: image_id(&files, &cmdline),
            kind,
            files,
            cmdline,
            source,
            imported_for,
            imported_at,
        }
    }

    pub fn size(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.size)
            .fold(0, u64::saturating_add)
    }

    pub fn has(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.name == name)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("plain data serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Parses a manifest and checks that its id is the one its content gives, so a
    /// hand-edited manifest is never trusted.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let expected = image_id(&manifest.files, &manifest.cmdline);
        if manifest.id != expected {
            return Err(format!(
                "its id {} is not the digest of its content ({expected})",
                manifest.id
            ));
        }
        if manifest.files.iter().any(|f| !is_file_name(&f.name)) {
            return Err("a file name is not a plain name".into());
        }
        Ok(manifest)
    }
}

/// The store only ever holds the fixed names, never a path.
fn is_file_name(name: &str) -> bool {
    [KERNEL, INITRD, SQUASHFS].contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, digest: &str) -> ManifestFile {
        ManifestFile {
            name: name.into(),
            size: 3,
            sha256: digest.into(),
        }
    }

    #[test]
    fn the_id_depends_on_content_only() {
        let a = Manifest::new(
            ImageKind::KexecTree,
            vec![file(INITRD, "bb"), file(KERNEL, "aa")],
            "init=/x".into(),
            "./result".into(),
            Some("web".into()),
            1,
        );
        let b = Manifest::new(
            ImageKind::Explicit,
            vec![file(KERNEL, "aa"), file(INITRD, "bb")],
            "init=/x".into(),
            "/elsewhere".into(),
            None,
            2,
        );
        assert_eq!(a.id, b.id);
        assert!(is_image_id(&a.id));
        let c = Manifest::new(
            ImageKind::Explicit,
            vec![file(KERNEL, "aa"), file(INITRD, "bc")],
            "init=/x".into(),
            "/elsewhere".into(),
            None,
            2,
        );
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn a_manifest_whose_id_does_not_match_is_refused() {
        let mut m = Manifest::new(
            ImageKind::Netboot,
            vec![file(KERNEL, "aa")],
            String::new(),
            "x".into(),
            None,
            0,
        );
        assert!(Manifest::from_json(&m.to_json()).is_ok());
        m.cmdline = "init=/evil".into();
        assert!(
            Manifest::from_json(&m.to_json())
                .unwrap_err()
                .contains("not the digest")
        );
    }

    #[test]
    fn ids_are_strict() {
        assert!(!is_image_id("sha256-../../etc"));
        assert!(!is_image_id(&format!("sha256-{}", "A".repeat(64))));
        assert!(is_image_id(&format!("sha256-{}", "0".repeat(64))));
    }
}
