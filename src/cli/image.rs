//! `ganeti-operator image import|list|verify|gc` and `store serve`: the artifact store
//! from the command line.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use super::exit;
use crate::config::{self, Overrides};
use crate::desired;
use crate::rapi::{HttpRapi, Rapi as _};
use crate::reconcile::plan::IMAGE_TAG_PREFIX;
use crate::store::import::{ImportOutcome, ImportProgress, ImportRequest, ImportSource, import};
use crate::store::{Store, catalog};

/// The store the settings name, opened; `None` when none is configured.
pub fn open_store(overrides: &Overrides) -> anyhow::Result<Option<Store>> {
    match config::store_location(overrides)? {
        Some(config::StoreLocation::Dir(dir)) => {
            Ok(Some(Store::open(&dir).with_context(|| {
                format!("opening the store {}", dir.display())
            })?))
        }
        Some(config::StoreLocation::Dav(dav)) => Ok(Some(Store::open_dav(dav)?)),
        None => Ok(None),
    }
}

pub(super) fn required_store(overrides: &Overrides) -> anyhow::Result<Store> {
    open_store(overrides)?.context(
        "no artifact store: give --store DIR or --store-url URL (or GANETI_OPERATOR_STORE, \
         GANETI_OPERATOR_STORE_URL, or `store:`/`storeUrl:` in the config file)",
    )
}

/// A progress bar on a terminal; nothing otherwise (indicatif hides itself).
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Bar {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl ImportProgress for Bar {
    fn phase(&self, what: &'static str, total_bytes: u64) {
        self.0.set_message(what);
        self.0.set_length(total_bytes);
        self.0.set_position(0);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn done(&self) {
        self.0.finish_and_clear();
    }
}

pub struct ImportArgs {
    pub class: String,
    pub path: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub squashfs: Option<PathBuf>,
    pub cmdline: Option<String>,
}

pub fn import_cmd(
    args: ImportArgs,
    overrides: &Overrides,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let store = required_store(overrides)?;
    let source = match (args.path, args.kernel, args.initrd) {
        (Some(path), None, None) => ImportSource::Result(path),
        (None, Some(kernel), Some(initrd)) => ImportSource::Files {
            kernel,
            initrd,
            squashfs: args.squashfs,
        },
        _ => anyhow::bail!("give a build result PATH, or --kernel and --initrd (not both)"),
    };
    let request = ImportRequest {
        source,
        class: Some(args.class.clone()),
        cmdline: args.cmdline,
    };
    let bar = Bar::new();
    let imported = import(&store, &request, &bar, SystemTime::now())?;
    let m = &imported.manifest;
    match &imported.outcome {
        ImportOutcome::Copied => writeln!(
            out,
            "imported {} ({}, {} bytes, {} file(s))",
            m.id,
            m.kind.name(),
            m.size(),
            m.files.len()
        )?,
        ImportOutcome::AlreadyThere => writeln!(
            out,
            "{} is already in the store, intact; nothing copied",
            m.id
        )?,
        ImportOutcome::AlreadyPresent => writeln!(
            out,
            "{} is already in the store, every file of its size; nothing uploaded \
             (`image verify` re-reads them)",
            m.id
        )?,
        ImportOutcome::Repaired { problems } => {
            writeln!(
                out,
                "{} was in the store but corrupt; repaired from this copy:",
                m.id
            )?;
            for problem in problems {
                writeln!(out, "  was: {problem}")?;
            }
        }
    }
    writeln!(
        out,
        "pin it in classes.yaml:\n  {}:\n    image: {}",
        args.class, m.id
    )?;
    Ok(exit::OK)
}

/// The desired state in `dir`, which must validate.
fn valid_state(dir: &Path) -> anyhow::Result<desired::DesiredState> {
    let validation = desired::validate_dir(dir)?;
    let errors = validation.errors_text();
    validation.state.with_context(|| {
        format!(
            "{}: the desired state does not validate ({}); run `ganeti-operator validate`",
            dir.display(),
            errors
        )
    })
}

/// Which classes pin which image.
fn pins_of(state: Option<&desired::DesiredState>) -> BTreeMap<String, BTreeSet<String>> {
    let mut pins: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, class) in state.iter().flat_map(|s| &s.classes) {
        pins.entry(class.image.clone())
            .or_default()
            .insert(name.clone());
    }
    pins
}

pub fn list_cmd(
    overrides: &Overrides,
    desired_dir: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let store = required_store(overrides)?;
    let state = desired_dir.map(valid_state).transpose()?;
    let pins = pins_of(state.as_ref());
    let booted = catalog::booted_images(&catalog::read_pointers(&store)?);
    let now = crate::unix_time::seconds(SystemTime::now());
    writeln!(
        out,
        "{:<71} {:<14} {:>10} {:>6}  pinned by / booted by",
        "ID", "CLASS", "SIZE", "AGE"
    )?;
    for m in catalog::manifests(&store)? {
        let join = |set: Option<&BTreeSet<String>>| {
            set.map(|s| s.iter().cloned().collect::<Vec<_>>().join(","))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".into())
        };
        writeln!(
            out,
            "{:<71} {:<14} {:>10} {:>6}  {} / {}",
            m.id,
            m.imported_for.as_deref().unwrap_or("-"),
            human_size(m.size()),
            human_age(now.saturating_sub(m.imported_at)),
            join(pins.get(&m.id)),
            join(booted.get(&m.id)),
        )?;
    }
    Ok(exit::OK)
}

pub fn verify_cmd(overrides: &Overrides, out: &mut dyn Write) -> anyhow::Result<u8> {
    let store = required_store(overrides)?;
    let bar = Bar::new();
    let total: u64 = catalog::manifests(&store)?.iter().map(|m| m.size()).sum();
    bar.phase("verify", total);
    let corrupt = catalog::verify(&store, &|n| bar.advance(n))?;
    bar.done();
    let count = store.image_ids()?.len();
    if corrupt.is_empty() {
        writeln!(
            out,
            "{count} image(s) verified; every file matches its manifest"
        )?;
        return Ok(exit::OK);
    }
    for c in &corrupt {
        for problem in &c.problems {
            writeln!(out, "CORRUPT {}: {problem}", c.id)?;
        }
    }
    writeln!(
        out,
        "{} of {count} image(s) corrupt; `ganeti-operator image import` of the same build repairs one",
        corrupt.len()
    )?;
    Ok(exit::FAILURE)
}

pub fn gc_cmd(
    overrides: &Overrides,
    desired_dir: &Path,
    keep: usize,
    dry_run: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let store = required_store(overrides)?;
    let mut in_use: BTreeMap<String, String> = BTreeMap::new();
    let state = valid_state(desired_dir)?;
    for (id, classes) in pins_of(Some(&state)) {
        let names: Vec<String> = classes.into_iter().collect();
        in_use.insert(id, format!("pinned by class {}", names.join(", ")));
    }
    for (id, hosts) in catalog::booted_images(&catalog::read_pointers(&store)?) {
        let hosts: Vec<String> = hosts.into_iter().collect();
        in_use
            .entry(id)
            .or_insert(format!("booted by {}", hosts.join(", ")));
    }
    // What running hosts were proven on: without the cluster's answer nothing is removed.
    let settings = config::resolve(overrides, state.cluster.rapi_url.as_deref())?;
    let rapi = HttpRapi::new(settings.rapi)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let instances = runtime
        .block_on(rapi.instances())
        .context("reading the instances' image tags; nothing was removed")?;
    for instance in instances {
        for tag in &instance.tags {
            if let Some(id) = tag.strip_prefix(IMAGE_TAG_PREFIX) {
                in_use
                    .entry(id.to_owned())
                    .or_insert(format!("tagged on {}", instance.name));
            }
        }
    }
    let report = catalog::gc(&store, keep, &in_use, dry_run)?;
    for (id, why) in &report.kept {
        let why = match why {
            catalog::KeptBecause::InUse(why) => why.clone(),
            catalog::KeptBecause::Newest => format!("among the {keep} newest unused"),
        };
        writeln!(out, "keep   {id}: {why}")?;
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for id in &report.removed {
        writeln!(out, "{verb} {id}")?;
    }
    writeln!(
        out,
        "{} kept, {} {verb}",
        report.kept.len(),
        report.removed.len()
    )?;
    Ok(exit::OK)
}

/// `store serve ADDR`: the store over HTTP until SIGTERM or SIGINT.
pub fn serve_cmd(overrides: &Overrides, listen: std::net::SocketAddr) -> anyhow::Result<u8> {
    let store = required_store(overrides)?;
    super::run_cmd::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let root = store.local_root().map(Path::to_owned).context(
            "the store is on WebDAV: its nginx serves it (`store serve` serves a local directory)",
        )?;
        tracing::info!("serving the store {} on http://{listen}", root.display());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            stop.cancel();
        });
        crate::store::serve::serve(listener, &root, shutdown).await?;
        Ok(exit::OK)
    })
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
