//! Boot pointers: the per-host iPXE script that names the image a host boots next, all
//! rendered from one template, and read back so the planner can compare.

use std::fmt;

use super::manifest::{INITRD, KERNEL, Manifest, SQUASHFS};

/// The first line after `#!ipxe` of every pointer the operator writes; observe reads the
/// host and image back from it.
const HEADER: &str = "# ganeti-operator boot pointer:";

/// A MAC address, held as six bytes so that `AA:00:…`, `aa-00-…` and Ganeti's spelling
/// all name the same pointer file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct Mac([u8; 6]);

impl Mac {
    pub fn parse(text: &str) -> Option<Mac> {
        let mut bytes = [0u8; 6];
        let mut parts = text.split([':', '-']);
        for byte in &mut bytes {
            let part = parts.next()?;
            if part.len() != 2 {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(bytes))
    }

    pub fn from_bytes(bytes: [u8; 6]) -> Mac {
        Mac(bytes)
    }

    pub fn bytes(self) -> [u8; 6] {
        self.0
    }

    /// As iPXE's `${net0/mac:hexhyp}` gives it: `aa-00-00-12-34-56`.
    pub fn hexhyp(self) -> String {
        self.join('-')
    }

    fn join(self, sep: char) -> String {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02x}")).collect();
        parts.join(&sep.to_string())
    }
}

impl From<Mac> for String {
    fn from(mac: Mac) -> String {
        mac.to_string()
    }
}

impl TryFrom<String> for Mac {
    type Error = String;

    fn try_from(text: String) -> Result<Mac, String> {
        Mac::parse(&text).ok_or_else(|| format!("not a MAC address: {text}"))
    }
}

/// Ganeti's spelling: `aa:00:00:12:34:56`.
impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.join(':'))
    }
}

/// What one host's pointer says.
pub struct PointerSpec<'a> {
    pub base_url: &'a str,
    pub host: &'a str,
    pub mac: Option<Mac>,
    pub image: &'a Manifest,
    /// The class's `kernelArgs`, with `{host}`, `{mac}` and `{image}` still to fill in.
    pub kernel_args: Option<&'a str>,
}

/// The one template every pointer comes from.
pub fn render(spec: &PointerSpec<'_>) -> String {
    let base = spec.base_url.trim_end_matches('/');
    let id = &spec.image.id;
    let dir = format!("{base}/images/{id}");
    let mut args: Vec<String> = vec![format!("initrd={INITRD}")];
    args.extend(spec.image.cmdline.split_whitespace().map(str::to_owned));
    if let Some(extra) = spec.kernel_args {
        let mac = spec.mac.map(|m| m.to_string()).unwrap_or_default();
        let filled = extra
            .replace("{host}", spec.host)
            .replace("{mac}", &mac)
            .replace("{image}", id);
        args.extend(filled.split_whitespace().map(str::to_owned));
    }
    if spec.image.has(SQUASHFS) {
        args.push(format!("ganeti-operator.squashfs={dir}/{SQUASHFS}"));
    }
    // The host learns which image it booted and who it is, e.g. for its health endpoint.
    args.push(format!("ganeti-operator.image={id}"));
    args.push(format!("ganeti-operator.host={}", spec.host));
    format!(
        "#!ipxe\n{HEADER} host={host} image={id}\n# Written by ganeti-operator from the desired state; edits are overwritten.\nkernel {dir}/{KERNEL} {args}\ninitrd {dir}/{INITRD}\nboot\n",
        host = spec.host,
        args = args.join(" "),
    )
}

/// `boot/chain.ipxe`: what every host runs first. It chains the host's own pointer by
/// MAC, and by the DHCP host name when there is none for its MAC.
pub fn render_chain(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    format!(
        "#!ipxe\n# ganeti-operator: hosts run this first; it chains their own boot pointer.\nchain {base}/boot/${{net0/mac:hexhyp}}.ipxe || chain {base}/boot/by-name/${{hostname}}.ipxe\n"
    )
}

/// What observe reads back from a pointer: the host and image its header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerHeader {
    pub host: String,
    pub image: String,
}

pub fn parse_header(text: &str) -> Option<PointerHeader> {
    let line = text.lines().find_map(|l| l.strip_prefix(HEADER))?;
    let mut host = None;
    let mut image = None;
    for word in line.split_whitespace() {
        if let Some(h) = word.strip_prefix("host=") {
            host = Some(h.to_owned());
        } else if let Some(i) = word.strip_prefix("image=") {
            image = Some(i.to_owned());
        }
    }
    Some(PointerHeader {
        host: host?,
        image: image?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::manifest::{ImageKind, ManifestFile};

    fn image(files: &[&str]) -> Manifest {
        let files = files
            .iter()
            .map(|n| ManifestFile {
                name: (*n).into(),
                size: 1,
                sha256: "00".into(),
            })
            .collect();
        Manifest::new(
            ImageKind::KexecTree,
            files,
            "init=/nix/store/x/init loglevel=4".into(),
            "r".into(),
            None,
            0,
        )
    }

    #[test]
    fn macs_in_every_spelling_are_one() {
        let a = Mac::parse("AA:00:00:12:34:5f").unwrap();
        assert_eq!(Some(a), Mac::parse("aa-00-00-12-34-5f"));
        assert_eq!(a.hexhyp(), "aa-00-00-12-34-5f");
        assert_eq!(a.to_string(), "aa:00:00:12:34:5f");
        for bad in [
            "aa:00:00:12:34",
            "aa:00:00:12:34:56:78",
            "zz:00:00:00:00:00",
            "a:0:0:0:0:0",
        ] {
            assert_eq!(Mac::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_pointer_names_its_image_and_reads_back() {
        let img = image(&[KERNEL, INITRD]);
        let mac = Mac::parse("aa:00:00:00:00:01");
        let text = render(&PointerSpec {
            base_url: "http://10.222.0.1:8080/",
            host: "web1.gnt.test",
            mac,
            image: &img,
            kernel_args: Some("console=ttyS0 hostname={host} mac={mac}"),
        });
        let kernel = text.lines().find(|l| l.starts_with("kernel ")).unwrap();
        assert!(kernel.starts_with(&format!(
            "kernel http://10.222.0.1:8080/images/{}/bzImage initrd=initrd init=/nix/store/x/init",
            img.id
        )));
        assert!(kernel.contains("hostname=web1.gnt.test mac=aa:00:00:00:00:01"));
        assert!(kernel.ends_with(&format!(
            "ganeti-operator.image={} ganeti-operator.host=web1.gnt.test",
            img.id
        )));
        assert!(!kernel.contains("squashfs"));
        assert_eq!(
            parse_header(&text),
            Some(PointerHeader {
                host: "web1.gnt.test".into(),
                image: img.id.clone()
            })
        );
        let with_squashfs = image(&[KERNEL, INITRD, SQUASHFS]);
        let text = render(&PointerSpec {
            base_url: "http://s",
            host: "h",
            mac: None,
            image: &with_squashfs,
            kernel_args: None,
        });
        assert!(text.contains(&format!(
            "ganeti-operator.squashfs=http://s/images/{}/root.squashfs",
            with_squashfs.id
        )));
    }

    #[test]
    fn the_chain_script_uses_ipxe_variables() {
        let chain = render_chain("http://s:1");
        assert!(chain.contains("chain http://s:1/boot/${net0/mac:hexhyp}.ipxe"));
        assert!(chain.starts_with("#!ipxe\n"));
    }
}
