//! `ganeti-operator init --from-cluster [DIR]`: reads the cluster through its RAPI and
//! writes a desired-state directory that describes it (see `crate::onboard`).

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

use crate::config::{self, Overrides};
use crate::onboard::{self, Snapshot};
use crate::rapi::{HttpRapi, Rapi as _};
use crate::reconcile::observe::observe;

pub fn run(
    dir: &Path,
    force: bool,
    connection: &Overrides,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    // There is no desired state yet to name the RAPI: the flags, environment or config must.
    let settings = config::resolve(connection, None)?;
    let url = settings.rapi.url.clone();
    let rapi = HttpRapi::new(settings.rapi)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (observed, groups) = runtime
        .block_on(async { tokio::try_join!(observe(&rapi, false), rapi.groups()) })
        .with_context(|| format!("reading the cluster at {url}"))?;
    let document = onboard::infer(&Snapshot {
        observed: &observed,
        groups: &groups,
        rapi_url: Some(&url),
    })?;
    let files = onboard::render(&document);
    let written = onboard::write_dir(dir, &files, force)?;
    for path in &written.paths {
        writeln!(out, "wrote {}", path.display())?;
    }
    let adopt = document.instances.values().filter(|i| i.adopt).count();
    writeln!(
        out,
        "{}: valid ({}; {} to adopt)",
        dir.display(),
        written.summary,
        crate::desired::counted(adopt, "instance")
    )?;
    writeln!(
        out,
        "next: read the files' headers, then `ganeti-operator reconcile --dry-run {}`",
        dir.display()
    )?;
    Ok(super::exit::OK)
}
