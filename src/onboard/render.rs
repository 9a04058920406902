//! The document as YAML, one file per section, each under a header that says what was
//! inferred and what to check. Written by hand rather than by a serializer: the order,
//! the comments and the quoting are part of what a person reads, and stay the same
//! from run to run.

use super::model::{ClassDoc, ClassOrigin, Document, NicDoc, ResourcesDoc};
use super::{PLACEHOLDER_IMAGE, ganeti_name};

/// One file of the directory: its name and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub name: &'static str,
    pub text: String,
}

pub const FILE_NAMES: [&str; 4] = [
    "cluster.yaml",
    "nodes.yaml",
    "classes.yaml",
    "instances.yaml",
];

pub fn render(doc: &Document) -> Vec<RenderedFile> {
    vec![
        RenderedFile {
            name: "cluster.yaml",
            text: cluster(doc),
        },
        RenderedFile {
            name: "nodes.yaml",
            text: nodes(doc),
        },
        RenderedFile {
            name: "classes.yaml",
            text: classes(doc),
        },
        RenderedFile {
            name: "instances.yaml",
            text: instances(doc),
        },
    ]
}

const WIDTH: usize = 92;

/// `text` as `# ` comment lines of at most `WIDTH` characters, indented by `indent`.
fn comment(out: &mut String, indent: &str, text: &str) {
    wrap(out, &format!("{indent}# "), &format!("{indent}# "), text);
}

/// `text` in lines of at most `WIDTH` characters, the first after `first`, the rest after
/// `rest` (a list item's hanging indent).
fn wrap(out: &mut String, first: &str, rest: &str, text: &str) {
    let mut line = String::new();
    let mut prefix = first;
    for word in text.split_whitespace() {
        if !line.is_empty() && prefix.len() + line.len() + 1 + word.len() > WIDTH {
            out.push_str(&format!("{prefix}{line}\n"));
            line.clear();
            prefix = rest;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{prefix}{line}\n"));
    }
}

fn header(out: &mut String, paragraphs: &[&str], notes: &[String]) {
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            out.push_str("#\n");
        }
        comment(out, "", paragraph);
    }
    if !notes.is_empty() {
        out.push_str("#\n# Check in particular:\n");
        for note in notes {
            wrap(out, "# - ", "#   ", note);
        }
    }
}

/// A plain scalar where YAML reads it back as the same string, a double-quoted one
/// (JSON's quoting, which YAML shares) everywhere else.
pub(super) fn scalar(text: &str) -> String {
    let plain = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/+@:-".contains(c))
        && !text.ends_with(':')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "nan" | "inf"
        );
    let sized = text
        .strip_suffix(['M', 'G', 'T'])
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if plain || sized {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
    }
}

fn cluster(doc: &Document) -> String {
    let c = &doc.cluster;
    let mut out = String::new();
    let version = c
        .software_version
        .as_deref()
        .map_or(String::new(), |v| format!(" (Ganeti {v})"));
    header(
        &mut out,
        &[
            &format!(
                "Written by `ganeti-operator init --from-cluster` from the cluster {}{version}, \
                 as its RAPI reports it.",
                c.name
            ),
            "Inferred: the name; rapiUrl, where the RAPI was reached; the hypervisor, \
             Ganeti's default; defaultDiskTemplate, Ganeti's first enabled one; nic, Ganeti's \
             NIC defaults; groups, when there are more than `default`.",
            "Check: rapiUrl is where the operator will reach the RAPI (credentials never go \
             here, they go in the operator's config file).",
            "To add by hand, as Ganeti does not know them: `store: {baseUrl: http://...}`, the \
             artifact store hosts netboot from (without it no boot pointer is written and no \
             image rotates), and `nodeReboot` and `masterFailover` before node upgrades.",
            "policy.prune is off: the operator deletes no instance, listed here or not.",
        ],
        &doc.notes.cluster,
    );
    out.push_str("cluster:\n");
    out.push_str(&format!("  name: {}\n", scalar(&c.name)));
    if let Some(url) = &c.rapi_url {
        out.push_str(&format!("  rapiUrl: {}\n", scalar(url)));
    }
    out.push_str(&format!("  hypervisor: {}\n", ganeti_name(&c.hypervisor)));
    if let Some(template) = &c.default_disk_template {
        out.push_str(&format!(
            "  defaultDiskTemplate: {}\n",
            ganeti_name(template)
        ));
    }
    if let Some(nic) = &c.nic {
        out.push_str("  nic:\n");
        nic_fields(&mut out, "    ", nic);
    }
    if let Some(groups) = &c.groups {
        let names: Vec<String> = groups.iter().map(|g| scalar(g)).collect();
        out.push_str(&format!("  groups: [{}]\n", names.join(", ")));
    }
    out.push_str("\npolicy:\n  prune: false\n");
    out
}

fn nic_fields(out: &mut String, indent: &str, nic: &NicDoc) {
    if let Some(link) = &nic.link {
        out.push_str(&format!("{indent}link: {}\n", scalar(link)));
    }
    if let Some(mode) = &nic.mode {
        out.push_str(&format!("{indent}mode: {}\n", scalar(mode)));
    }
}

fn nodes(doc: &Document) -> String {
    let mut out = String::new();
    header(
        &mut out,
        &[
            "Nodes as Ganeti reports them, with their roles and groups. Each boots the class \
             its operator class tag names, or `ganeti-node` (classes.yaml).",
            "Check: the roles are the ones to keep; the operator sets a drifted role back \
             (all but the master's, which moves only by `gnt-cluster master-failover`).",
            "To add by hand: hostKey (the node's SSH host public key) for nodes that receive \
             secrets, mac for netbooting, capacity to check pinned instances against.",
        ],
        &doc.notes.nodes,
    );
    if doc.nodes.is_empty() {
        out.push_str("nodes: {}\n");
        return out;
    }
    out.push_str("nodes:\n");
    for (name, node) in &doc.nodes {
        out.push_str(&format!("  {}:\n", scalar(name)));
        out.push_str(&format!("    class: {}\n", scalar(&node.class)));
        out.push_str(&format!("    role: {}\n", ganeti_name(&node.role)));
        if let Some(group) = &node.group {
            out.push_str(&format!("    group: {}\n", scalar(group)));
        }
    }
    out
}

fn classes(doc: &Document) -> String {
    let mut out = String::new();
    let images = format!(
        "Images: Ganeti does not know what a host boots. A class whose hosts carry the \
         operator's image tag pins that image; every other pins the placeholder \
         {PLACEHOLDER_IMAGE}. Import the class's image (`ganeti-operator image import \
         --class NAME ./result`) and pin the id it prints: images matter once cluster.store \
         is set."
    );
    header(
        &mut out,
        &[
            "Classes: where instances carry the operator's class tag, the class it names; \
             every other instance is in the class of its OS, disk template and hypervisor. A \
             class has the most common resources of its instances, and each instance lists \
             only what differs (instances.yaml).",
            "Check: the names; rename a class here, in instances.yaml and in nodes.yaml \
             together (the operator's class tag follows).",
            &images,
            "Secrets: Ganeti holds none. Add a `secrets:` section (e.g. secrets.yaml: age files \
             encrypted to the operator's identity), list them on a class (`secrets: [name]`), \
             and give each host that receives them a hostKey.",
        ],
        &doc.notes.classes,
    );
    out.push_str("classes:\n");
    for (i, (name, class)) in doc.classes.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        comment(&mut out, "  ", &origin_text(class));
        out.push_str(&format!("  {}:\n", scalar(name)));
        out.push_str(&format!("    image: {}\n", scalar(&class.image)));
        if let Some(hypervisor) = &class.hypervisor {
            out.push_str(&format!("    hypervisor: {}\n", ganeti_name(hypervisor)));
        }
        if let Some(os) = &class.os {
            out.push_str(&format!("    os: {}\n", scalar(os)));
        }
        if let Some(template) = &class.disk_template {
            out.push_str(&format!("    diskTemplate: {}\n", ganeti_name(template)));
        }
        resources(&mut out, "    ", &class.resources);
    }
    out
}

fn origin_text(class: &ClassDoc) -> String {
    let shown: Vec<&str> = class.members.iter().take(5).map(String::as_str).collect();
    let more = class.members.len().saturating_sub(shown.len());
    let mut names = shown.join(", ");
    if more > 0 {
        names.push_str(&format!(" and {more} more"));
    }
    match &class.origin {
        ClassOrigin::Tag => format!("Named by the operator's class tag on {names}."),
        ClassOrigin::Kind {
            os,
            disk_template,
            hypervisor,
        } => format!("OS {os}, disk template {disk_template}, hypervisor {hypervisor}: {names}."),
        ClassOrigin::Nodes => format!("The nodes' class: {names}."),
    }
}

fn resources(out: &mut String, indent: &str, r: &ResourcesDoc) {
    if r.is_empty() {
        return;
    }
    out.push_str(&format!("{indent}resources:\n"));
    let inner = format!("{indent}  ");
    if let Some(memory) = &r.memory {
        out.push_str(&format!("{inner}memory: {memory}\n"));
    }
    if let Some(vcpus) = r.vcpus {
        out.push_str(&format!("{inner}vcpus: {vcpus}\n"));
    }
    if let Some(disks) = &r.disks {
        if disks.is_empty() {
            out.push_str(&format!("{inner}disks: []\n"));
        } else {
            out.push_str(&format!("{inner}disks:\n"));
        }
        for disk in disks {
            out.push_str(&format!("{inner}  - size: {}\n", disk.size));
            if let Some(name) = &disk.name {
                out.push_str(&format!("{inner}    name: {}\n", scalar(name)));
            }
        }
    }
    if let Some(nics) = &r.nics {
        if nics.is_empty() {
            out.push_str(&format!("{inner}nics: []\n"));
        } else {
            out.push_str(&format!("{inner}nics:\n"));
        }
        for nic in nics {
            let mut fields = String::new();
            nic_fields(&mut fields, "", nic);
            let mut lines = fields.lines();
            match lines.next() {
                Some(first) => out.push_str(&format!("{inner}  - {first}\n")),
                None => out.push_str(&format!("{inner}  - {{}}\n")),
            }
            for line in lines {
                out.push_str(&format!("{inner}    {line}\n"));
            }
        }
    }
}

fn instances(doc: &Document) -> String {
    let mut out = String::new();
    header(
        &mut out,
        &[
            "Instances as Ganeti reports them, each with its class (classes.yaml) and only \
             what differs from it. primaryNode is where it runs now.",
            "adopt: true marks an instance the operator does not manage yet: the first \
             reconcile takes it over by adding the operator's tags, and changes nothing else.",
            "Check: `ganeti-operator reconcile --dry-run` should show nothing but those \
             adoptions. Remove adopt once they are done, if you like; it is harmless.",
            "To add by hand: hostKey for instances that receive secrets.",
        ],
        &doc.notes.instances,
    );
    if doc.instances.is_empty() {
        out.push_str("instances: {}\n");
        return out;
    }
    out.push_str("instances:\n");
    for (name, i) in &doc.instances {
        out.push_str(&format!("  {}:\n", scalar(name)));
        out.push_str(&format!("    class: {}\n", scalar(&i.class)));
        if let Some(os) = &i.os {
            out.push_str(&format!("    os: {}\n", scalar(os)));
        }
        if let Some(template) = &i.disk_template {
            out.push_str(&format!("    diskTemplate: {}\n", ganeti_name(template)));
        }
        resources(&mut out, "    ", &i.resources);
        if let Some(power) = &i.power {
            out.push_str(&format!("    power: {}\n", ganeti_name(power)));
        }
        if let Some(node) = &i.primary_node {
            out.push_str(&format!("    primaryNode: {}\n", scalar(node)));
        }
        if let Some(node) = &i.secondary_node {
            out.push_str(&format!("    secondaryNode: {}\n", scalar(node)));
        }
        if !i.tags.is_empty() {
            let tags: Vec<String> = i.tags.iter().map(|t| scalar(t)).collect();
            out.push_str(&format!("    tags: [{}]\n", tags.join(", ")));
        }
        if i.protect {
            out.push_str("    protect: true\n");
        }
        if i.adopt {
            out.push_str("    adopt: true\n");
        }
    }
    out
}
