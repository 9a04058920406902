//! `ganeti-operator reconcile [DIR]`: show the plan (`--dry-run`, optionally checked by
//! Ganeti with `--server-check`) or carry it out once.
//!
//! Exit codes follow Terraform's `-detailed-exitcode`: 0 nothing to do (or converged),
//! 2 changes pending (or left blocked after applying), 1 error or a failed action.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use anyhow::Context as _;

use super::progress::StderrProgress;
use super::{OutputFormat, exit};
use crate::backoff::BackoffPolicy;
use crate::config::{self, Overrides};
use crate::desired::{self, diagnostic};
use crate::notify::Seen;
use crate::rapi::HttpRapi;
use crate::rapi::jobs::WaitOptions;
use crate::reconcile::cycle::{self, ApplyOptions, Ending};
use crate::reconcile::execute::{self, ActionResult, ExecuteOptions};
use crate::reconcile::plan::scope::Scope;
use crate::reconcile::plan::status::RotationState;
use crate::reconcile::plan::{ActionKind, Plan};
use crate::reconcile::reason::RunId;
use crate::reconcile::render;
use crate::reconcile::saved::{self, SavedPlan};
use crate::reconcile::watch::HealthWatch;

/// Between two passes of a rotation: not busier than this, and not sleepier.
const ROTATION_PASS_MIN: std::time::Duration = std::time::Duration::from_millis(200);
const ROTATION_PASS_MAX: std::time::Duration = std::time::Duration::from_secs(5);

pub struct ReconcileArgs {
    pub dir: PathBuf,
    pub dry_run: bool,
    pub server_check: bool,
    pub output: OutputFormat,
    pub connection: Overrides,
    /// With `dry_run`: save the plan to this file.
    pub out: Option<PathBuf>,
    /// Apply the plan saved in this file instead of planning.
    pub apply_plan: Option<PathBuf>,
    /// `--target KIND/NAME`, as given.
    pub targets: Vec<String>,
    /// `--exclude KIND/NAME`, as given.
    pub excludes: Vec<String>,
}

pub fn run(args: ReconcileArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let store = super::image::open_store(&args.connection)?;
    let mut source = desired::DirSource::new(&args.dir);
    if let Some(store) = &store {
        source = source.with_store_images(store.image_ids()?);
    }
    // A saved plan refuses to be applied when the plan file is damaged: found before
    // anything else is read.
    let saved = match &args.apply_plan {
        Some(path) => Some((path.clone(), SavedPlan::read(path)?)),
        None => None,
    };
    // Read once: the revision names exactly the bytes that were validated.
    let files = source.yaml_files()?;
    let revision = crate::source::dir_revision(&files);
    let validation = desired::validate_files(files, &source);
    let Some(desired) = validation.state else {
        std::io::stderr().write_all(diagnostic::render_text(&validation.diagnostics).as_bytes())?;
        eprintln!(
            "{}: {}; nothing was applied",
            args.dir.display(),
            validation.errors_text()
        );
        return Ok(exit::FAILURE);
    };
    // A name that is not in the desired state is an error before the cluster is asked.
    let scope = Scope::new(&desired, &args.targets, &args.excludes)
        .map_err(|e| anyhow::anyhow!("{e}; nothing was applied"))?;
    let settings = config::resolve(&args.connection, desired.cluster.rapi_url.as_deref())?;
    // Read before anything else happens: a bad identity is an error with nothing done.
    // A dry run never decrypts, so it does not need one.
    let identity = if args.dry_run {
        None
    } else {
        config::identity(&args.connection)?
    };
    let secrets = crate::secrets::SecretsContext {
        sources: crate::secrets::SourceFiles::Dir(args.dir.clone()),
        identity,
        notify: if args.dry_run {
            None
        } else {
            config::notify(&args.connection)?.map(|notify| crate::secrets::Notify {
                settings: notify,
                state_file: config::notify_file(&settings.state_dir, &desired.cluster.name),
            })
        },
    };
    let history_file = settings.history_file(&desired.cluster.name);
    let rapi = HttpRapi::new(settings.rapi)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let run = RunId::new(SystemTime::now());
    // The trail goes to the log only where one asked for a log to ship: the text output
    // already shows each step.
    let sink: &dyn crate::event::EventSink =
        if super::log_format::chosen() == super::log_format::LogFormat::Json {
            super::log_format::init();
            &crate::event::LogEvents
        } else {
            &crate::event::NoEvents
        };
    let events = crate::event::Emitter::new(sink, &run, Some(&revision));
    let options = ExecuteOptions {
        max_parallel: desired.policy.max_parallel_jobs as usize,
        wait: WaitOptions::default(),
    };
    let color = super::use_color();
    if args.dry_run {
        return runtime.block_on(async {
            let plan = match &args.out {
                Some(path) => {
                    let (plan, saved) = saved::make(
                        &rapi,
                        store.as_ref(),
                        Some(&secrets),
                        &desired,
                        &scope,
                        &revision,
                        &history_file,
                        SystemTime::now(),
                    )
                    .await?;
                    saved.write(path)?;
                    eprintln!(
                        "Saved the plan to {}; `ganeti-operator reconcile --apply-plan {} {}` carries it out.",
                        path.display(),
                        path.display(),
                        args.dir.display()
                    );
                    plan
                }
                None => scope.limit(
                    &desired,
                    cycle::preview(
                        &rapi,
                        store.as_ref(),
                        Some(&secrets),
                        &desired,
                        &history_file,
                        SystemTime::now(),
                    )
                    .await?,
                ),
            };
            let verdicts = if args.server_check {
                Some(execute::server_check(&rapi, &plan, &run, options).await)
            } else {
                None
            };
            print_plan(&plan, verdicts.as_deref(), args.output, color, out)?;
            warn_scope(&scope, args.output, out)?;
            Ok(if plan.has_changes() {
                exit::CHANGES
            } else {
                exit::OK
            })
        });
    }

    let started = Instant::now();
    let progress = StderrProgress::new();
    let stop = AtomicBool::new(false);
    let output = args.output;
    let printed = std::sync::atomic::AtomicUsize::new(0);
    let on_plan = |plan: &Plan| {
        // The first plan in full; a rotation's later passes only when they act.
        let first = printed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        if output == OutputFormat::Text && (first || !plan.actions.is_empty()) {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(render::text(plan, None, color).as_bytes());
            let _ = stdout.flush();
        }
    };
    if let Some((path, saved)) = &saved {
        // Exactly the saved actions, once: no further pass, which would be a new plan. A
        // targeted plan is checked, and reported, within the scope it was made in.
        let scope = Scope::new(&desired, &saved.targets, &saved.excludes)
            .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was applied", path.display()))?;
        let applied = runtime.block_on(saved::apply(
            &rapi,
            &desired,
            &revision,
            (path, saved),
            ApplyOptions {
                store: store.as_ref(),
                secrets: Some(&secrets),
                run: &run,
                execute: options,
                backoff: BackoffPolicy::default(),
                history_file: &history_file,
                scope: &scope,
                on_plan: &on_plan,
                fresh: None,
                events: &events,
            },
            &progress,
            &stop,
        ));
        // A refused plan (stale, another cluster) is the person's own answer, not a failed
        // reconcile to tell anyone: it changed nothing.
        let report = applied?;
        let seen = Seen::of(&desired.cluster.name, &revision, Ok(&report));
        let code = super::reconcile_report::print(&report, &run, started, args.output, color, out)?;
        warn_scope(&scope, args.output, out)?;
        // After the summary, as a full run does.
        super::reconcile_notify::send(&runtime, &desired, &settings.state_dir, vec![seen]);
        return Ok(code);
    }
    // A rotation advances one step per host per pass; the command stays until it is done,
    // stalled or failed, as a person running it expects. The daemon does the same across
    // its reconciles without waiting in between.
    let mut report;
    let mut fresh = None;
    // What each pass saw, told at the end (see `reconcile_notify`).
    let mut seen = Vec::new();
    loop {
        let applied = runtime.block_on(cycle::apply(
            &rapi,
            &desired,
            ApplyOptions {
                store: store.as_ref(),
                secrets: Some(&secrets),
                run: &run,
                execute: options,
                backoff: BackoffPolicy::default(),
                history_file: &history_file,
                scope: &scope,
                on_plan: &on_plan,
                fresh: fresh.take(),
                events: &events,
            },
            &progress,
            &stop,
        ));
        seen.push(Seen::of_result(&desired.cluster.name, &revision, &applied));
        if applied.is_err() {
            let seen = std::mem::take(&mut seen);
            super::reconcile_notify::send(&runtime, &desired, &settings.state_dir, seen);
        }
        report = applied?;
        let rolling: Vec<String> = report
            .after
            .rotations
            .iter()
            .filter(|r| r.state == RotationState::Rolling)
            .map(|r| format!("{} of class {}: {}", r.what(), r.class, r.summary()))
            .collect();
        // A failed rotation or node-upgrade step is the next pass's to roll back: it must
        // not wait for another run (a node would stay drained with its pointer flipped).
        let rolling_back = report.after.actions.iter().any(|a| a.rolls_back());
        let only_rolling_failed = report.outcomes.iter().all(|o| {
            !matches!(o.result, ActionResult::Failed(_))
                || report.plan.actions[o.action].rolls_back()
        });
        // What an upgrade unblocks once it is done (instances moving back home, the master
        // role going back) belongs to the same run.
        let unblocked = report
            .plan
            .actions
            .iter()
            .any(|a| a.kind == ActionKind::NodeUpgrade)
            && !report.after.actions.is_empty();
        if (report.ending() == Ending::Failed && !(only_rolling_failed && rolling_back))
            || (rolling.is_empty() && !rolling_back && !unblocked)
        {
            break;
        }
        for line in rolling {
            eprintln!("{line}");
        }
        let due_in = report
            .after
            .look_again_at()
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .unwrap_or_default();
        // A step due at once is planned from the observe that just ended: nothing ran
        // since, and a second observe would only add its time to every step.
        if due_in.is_zero() {
            fresh = Some(crate::reconcile::cycle::Fresh {
                observed: report.observed.clone(),
                generation: report.generation,
            });
        }
        let pause = due_in.clamp(ROTATION_PASS_MIN, ROTATION_PASS_MAX);
        // A host waiting for its check is watched meanwhile: it advances the moment it
        // passes, not at the next pass.
        let watch = HealthWatch::of(&desired, &report.observed, &report.after);
        if watch.is_empty() {
            std::thread::sleep(pause);
        } else {
            runtime.block_on(watch.changed_within(pause));
        }
    }
    let code = super::reconcile_report::print(&report, &run, started, args.output, color, out)?;
    warn_scope(&scope, args.output, out)?;
    // After the summary: the person reads it while the notices go out.
    super::reconcile_notify::send(&runtime, &desired, &settings.state_dir, seen);
    Ok(code)
}

/// A targeted run says, last, that it did not look at everything: in the text for people,
/// on stderr beside JSON for scripts.
fn warn_scope(scope: &Scope, output: OutputFormat, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(warning) = scope.warning() {
        match output {
            OutputFormat::Text => writeln!(out, "{warning}")?,
            OutputFormat::Json => eprintln!("{warning}"),
        }
    }
    Ok(())
}

fn print_plan(
    plan: &Plan,
    verdicts: Option<&[crate::reconcile::execute::Verdict]>,
    output: OutputFormat,
    color: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match output {
        OutputFormat::Text => out.write_all(render::text(plan, verdicts, color).as_bytes())?,
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&render::json(plan, verdicts))?
        )?,
    }
    Ok(())
}
