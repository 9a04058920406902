//! `ganeti-operator rollout promote CLASS [DIR]`: a person's go-ahead for a
//! `promote: manual` rollout once its canary is healthy.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::Subcommand;

use super::{ConnectionArgs, exit};
use crate::config;
use crate::desired::raw::Promote;
use crate::desired::{self, diagnostic};
use crate::rapi::HttpRapi;
use crate::rapi::jobs::WaitOptions;
use crate::reconcile::promote::{Promoted, promote};
use crate::reconcile::reason::RunId;

#[derive(Debug, Subcommand)]
pub(super) enum RolloutCommand {
    /// Let a `promote: manual` class's rollout go on past its canary. Recorded in the
    /// cluster as a tag, so it holds across restarts and for every operator.
    Promote {
        /// The class whose rollout to its current image may go on.
        class: String,
        /// The desired-state directory.
        #[arg(default_value = "desired-state")]
        dir: PathBuf,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
}

pub(super) fn run(command: RolloutCommand, out: &mut dyn Write) -> anyhow::Result<u8> {
    let RolloutCommand::Promote {
        class,
        dir,
        connection,
    } = command;
    let validation = desired::validate_source(&desired::DirSource::new(&dir))?;
    let Some(desired) = validation.state else {
        std::io::stderr().write_all(diagnostic::render_text(&validation.diagnostics).as_bytes())?;
        eprintln!(
            "{}: {}; nothing was promoted",
            dir.display(),
            validation.errors_text()
        );
        return Ok(exit::FAILURE);
    };
    let Some(entry) = desired.classes.get(&class) else {
        let known: Vec<&str> = desired.classes.keys().map(String::as_str).collect();
        eprintln!(
            "{}: no class `{class}`; the classes are {}",
            dir.display(),
            known.join(", ")
        );
        return Ok(exit::FAILURE);
    };
    if entry.rotation.promote != Promote::Manual {
        eprintln!(
            "class `{class}` rolls on by itself: it has no `rotation.promote: manual`, so there is nothing to promote"
        );
        return Ok(exit::FAILURE);
    }
    let settings = config::resolve(&connection.overrides(), desired.cluster.rapi_url.as_deref())?;
    let rapi = HttpRapi::new(settings.rapi)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let run = RunId::new(SystemTime::now());
    // Its instances and nodes: one of them proven on the image is the canary.
    let members: BTreeSet<String> = desired
        .instances
        .iter()
        .filter(|(_, i)| i.class == class)
        .map(|(name, _)| name.clone())
        .chain(
            desired
                .nodes
                .iter()
                .filter(|(_, n)| n.class == class)
                .map(|(name, _)| name.clone()),
        )
        .collect();
    let done = runtime
        .block_on(promote(
            &rapi,
            &class,
            &entry.image,
            &members,
            &run,
            WaitOptions::default(),
        ))
        .with_context(|| format!("promoting class `{class}` to {}", entry.image))?;
    match done {
        Promoted::Already => writeln!(
            out,
            "class {class}: its rollout to {} was promoted already",
            entry.image
        )?,
        Promoted::Recorded { tag, replaced } => {
            writeln!(
                out,
                "class {class}: promoted to {}; the rest of its members follow at the next reconcile (cluster tag {tag})",
                entry.image
            )?;
            for old in replaced {
                writeln!(out, "  removed the earlier promotion {old}")?;
            }
        }
    }
    Ok(exit::OK)
}
