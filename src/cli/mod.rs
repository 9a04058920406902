//! The command line: parsing, dispatch, and exit codes. Each subcommand lives in its own file.

mod docs_cmd;
#[cfg(test)]
mod error_chain_tests;
mod events_cmd;
#[cfg(test)]
mod help_tests;
mod hook;
mod image;
mod init_cmd;
mod local_http;
mod log_format;
mod progress;
mod reconcile;
mod reconcile_notify;
mod reconcile_report;
mod reference;
mod rollout_cmd;
mod run_cmd;
mod schema_cmd;
mod secrets_cmd;
mod status_cmd;
mod validate;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ganeti-operator",
    version,
    about = "Keeps a Ganeti cluster matching a desired state kept as YAML in git"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The log on stderr: `text` for people, `json` for one JSON object a line (the
    /// event trail's events as `/events` serves them).
    #[arg(long, global = true, value_enum, default_value_t = log_format::LogFormat::Text)]
    log_format: log_format::LogFormat,
}

// Parsed once per process; boxing the large variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Check a desired-state directory and report every problem with file:line:column.
    Validate {
        /// The desired-state directory.
        #[arg(default_value = "desired-state")]
        dir: PathBuf,
        /// `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Check every class's image against this artifact store too.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write a desired-state directory that describes a running cluster (--from-cluster).
    ///
    /// Reads the cluster through its RAPI and writes cluster.yaml, nodes.yaml, classes.yaml
    /// and instances.yaml: nodes with their roles and groups; classes from the operator's
    /// class tags, else one per OS, disk template and hypervisor with the most common
    /// resources; instances with only what differs from their class, and `adopt: true`
    /// where the operator does not manage them yet; prune off. Each file's header says what
    /// was inferred and what to add by hand (images, the store, secrets, host keys). The
    /// files are validated before anything is written, and an existing file is never
    /// overwritten without --force. `reconcile --dry-run` on the result shows only the
    /// adoptions.
    Init {
        /// Infer the desired state from the live cluster (the only source so far).
        #[arg(long, required = true)]
        from_cluster: bool,
        /// The desired-state directory to write (created if missing).
        #[arg(default_value = "desired-state")]
        dir: PathBuf,
        /// Overwrite cluster.yaml, nodes.yaml, classes.yaml and instances.yaml if they exist.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Make the cluster match the desired state, or show what that takes (--dry-run).
    ///
    /// Exit codes: 0 nothing to do or converged, 2 changes pending, 1 error or failure.
    Reconcile {
        /// The desired-state directory.
        #[arg(default_value = "desired-state")]
        dir: PathBuf,
        /// Show the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: submit every job with Ganeti's ?dry-run=1 and show its verdict.
        #[arg(long, requires = "dry_run")]
        server_check: bool,
        /// `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// With --dry-run: save the plan to this file, with what it was made from, for
        /// --apply-plan.
        #[arg(long, value_name = "FILE", requires = "dry_run")]
        out: Option<PathBuf>,
        /// Carry out exactly the plan saved in FILE; refused, with nothing applied, when
        /// the desired state or the cluster changed for an object it touches.
        #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
        apply_plan: Option<PathBuf>,
        /// Look only at this object and what it needs (its boot pointer and secrets);
        /// repeatable. KIND is instance, node, class or secret. Prune never runs.
        #[arg(
            long = "target",
            value_name = "KIND/NAME",
            conflicts_with = "apply_plan"
        )]
        targets: Vec<String>,
        /// Leave this object out (a class: its members); repeatable. Prune never runs.
        #[arg(
            long = "exclude",
            value_name = "KIND/NAME",
            conflicts_with = "apply_plan"
        )]
        excludes: Vec<String>,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Run as a service: reconcile on a timer, on changes, on a signed webhook, on SIGHUP.
    Run {
        /// Read the desired state from this directory (watched for changes).
        #[arg(long, conflicts_with = "git_repo")]
        dir: Option<PathBuf>,
        /// Read the desired state from this git repository (bare is fine), without a
        /// working tree.
        #[arg(long)]
        git_repo: Option<PathBuf>,
        /// The branch (or any revision git understands) the desired state is read from.
        #[arg(long, default_value = "main")]
        git_branch: String,
        /// The desired-state directory inside the repository.
        #[arg(long, default_value = "desired-state")]
        git_path: String,
        /// Where /healthz, /readyz, /status, /events, /metrics and /hooks/git are served.
        #[arg(long, env = "GANETI_OPERATOR_LISTEN", default_value = "127.0.0.1:9090")]
        listen: std::net::SocketAddr,
        /// The shared secret webhooks are signed with; without it every webhook is refused.
        #[arg(long, env = "GANETI_OPERATOR_WEBHOOK_SECRET_FILE")]
        webhook_secret_file: Option<PathBuf>,
        /// Overrides policy.resyncInterval (e.g. 30s, 5m).
        #[arg(long, value_parser = parse_duration)]
        resync_interval: Option<std::time::Duration>,
        /// How long SIGTERM waits for jobs in flight.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        shutdown_grace: std::time::Duration,
        /// Serve the artifact store (--store) read-only over HTTP on this address.
        #[arg(long)]
        serve_store: Option<std::net::SocketAddr>,
        #[command(flatten)]
        listener: run_cmd::ListenerArgs,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Show where every object stands, from a running daemon.
    ///
    /// Exit codes: 0 every object Ready, 1 one Stalled, 2 the daemon not ready yet or an
    /// object still on its way.
    Status {
        /// The daemon's address (`--listen`); without a scheme, http.
        #[arg(
            long,
            env = "GANETI_OPERATOR_URL",
            default_value = "http://127.0.0.1:9090"
        )]
        url: String,
        /// `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Print the daemon's event trail: what it decided and did, with Ganeti's job ids.
    ///
    /// Each event names its run, the id in the reason stamp of the run's jobs
    /// (`gnt-job info` shows it), and the desired revision it applied. `--follow` asks
    /// again every second until interrupted.
    Events {
        /// The daemon's address (`--listen`); without a scheme, http.
        #[arg(
            long,
            env = "GANETI_OPERATOR_URL",
            default_value = "http://127.0.0.1:9090"
        )]
        url: String,
        /// Keep printing new events until interrupted.
        #[arg(long)]
        follow: bool,
        /// Only events numbered after N (the `seq` of the last one seen).
        #[arg(long, value_name = "N", default_value_t = 0)]
        since: u64,
        /// One JSON object a line, as `/events` serves each event.
        #[arg(long)]
        json: bool,
    },
    /// Git server hooks.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Print the JSON schema of desired-state files.
    Schema,
    /// Print a shell completion script, e.g. `source <(ganeti-operator completions bash)`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `ganeti-operator man | man -l -`.
    Man,
    /// Write the guide's generated reference pages (the desired state, the command line)
    /// as markdown into a directory.
    Reference {
        /// The directory the pages are written into.
        #[arg(long, default_value = "docs/src/reference")]
        out: PathBuf,
    },
    /// The artifact store's images: import, list, verify, gc.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The artifact store itself.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Host copies of the desired state's secrets: status, rekey.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Rollouts: promote one past its canary.
    #[command(subcommand)]
    Rollout(rollout_cmd::RolloutCommand),
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Every host × secret it needs: current, stale or missing (exit 2 unless all current).
    Status {
        /// The desired-state directory.
        #[arg(default_value = "desired-state")]
        dir: PathBuf,
        /// `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        #[command(flatten)]
        args: SecretsArgs,
    },
    /// Encrypt every host copy again (needed after the operator's identity changed).
    Rekey {
        /// The desired-state directory.
        #[arg(default_value = "desired-state")]
        dir: PathBuf,
        #[command(flatten)]
        args: SecretsArgs,
    },
}

/// The store and the operator identity, for the secrets commands.
#[derive(Debug, clap::Args)]
struct SecretsArgs {
    /// The artifact store's directory.
    #[arg(long, env = STORE_ENV)]
    store: Option<PathBuf>,
    #[command(flatten)]
    dav: DavArgs,
    /// A config file whose `store:` (or `storeUrl:`) and `secretsIdentityFile:` are used.
    #[arg(long, env = "GANETI_OPERATOR_CONFIG")]
    config: Option<PathBuf>,
    /// The operator's age identity or SSH private key, as a file (rekey only).
    #[arg(long, env = "GANETI_OPERATOR_IDENTITY_FILE")]
    secrets_identity_file: Option<PathBuf>,
}

impl SecretsArgs {
    fn overrides(self) -> crate::config::Overrides {
        crate::config::Overrides {
            config_file: self.config,
            store: self.store,
            secrets_identity_file: self.secrets_identity_file,
            ..self.dav.overrides()
        }
    }
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Import a build result (kexecTree or netboot; symlinks into /nix/store are followed),
    /// or --kernel/--initrd[/--squashfs]. Prints the id and the line that pins it.
    Import {
        /// The class the image is for (shown by `image list`).
        #[arg(long)]
        class: String,
        /// A `nix build` result directory.
        path: Option<PathBuf>,
        /// Instead of a result directory: the kernel (with --initrd).
        #[arg(long, requires = "initrd", conflicts_with = "path")]
        kernel: Option<PathBuf>,
        /// With --kernel: the initrd.
        #[arg(long, requires = "kernel")]
        initrd: Option<PathBuf>,
        /// With --kernel: the root filesystem image, if the image has one.
        #[arg(long, requires = "kernel")]
        squashfs: Option<PathBuf>,
        /// The kernel command line the image needs, instead of the one its iPXE or
        /// kexec script gives.
        #[arg(long)]
        cmdline: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Every image: id, class, size, age, which classes pin it and which hosts boot it.
    List {
        /// A desired-state directory, to show which classes pin each image.
        #[arg(long)]
        desired: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Re-hash every file of every image and name any that does not match its manifest.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove images nothing uses, keeping the N newest of them. Never removes an image a
    /// class pins, a boot pointer names, or an instance's image tag names.
    Gc {
        /// The desired-state directory (its classes' pins are kept).
        #[arg(default_value = "desired-state")]
        dir: PathBuf,
        /// Unused images kept besides the pinned ones, the newest first.
        #[arg(long, default_value_t = 2)]
        keep: usize,
        /// Show what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Serve the store read-only over HTTP (Range, ETag, no listing) until SIGTERM.
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where the artifact store is, for commands that need nothing else.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// The artifact store's directory.
    #[arg(long, env = STORE_ENV)]
    store: Option<PathBuf>,
    #[command(flatten)]
    dav: DavArgs,
    /// A config file whose `store:` (or `storeUrl:`) names it.
    #[arg(long, env = "GANETI_OPERATOR_CONFIG")]
    config: Option<PathBuf>,
}

impl StoreArgs {
    fn overrides(self) -> crate::config::Overrides {
        crate::config::Overrides {
            config_file: self.config,
            store: self.store,
            ..self.dav.overrides()
        }
    }
}

/// The store on a WebDAV-enabled nginx, instead of a directory.
#[derive(Debug, clap::Args)]
struct DavArgs {
    /// The store on WebDAV: the base URL of the location the operator writes through
    /// (PUT, DELETE, MOVE, and GET with `autoindex_format json`), instead of --store.
    #[arg(long, env = "GANETI_OPERATOR_STORE_URL", conflicts_with = "store")]
    store_url: Option<String>,
    /// A file holding `user:password` for the store URL's basic auth; never the password
    /// itself on the command line.
    #[arg(long, env = "GANETI_OPERATOR_STORE_CREDENTIALS_FILE")]
    store_credentials_file: Option<PathBuf>,
    /// Trust the store URL's certificate signed by this CA.
    #[arg(long, env = "GANETI_OPERATOR_STORE_CA_FILE")]
    store_ca_file: Option<PathBuf>,
    /// Trust exactly the store URL's certificate with this SHA-256 fingerprint.
    #[arg(long, env = "GANETI_OPERATOR_STORE_FINGERPRINT")]
    store_fingerprint: Option<String>,
}

impl DavArgs {
    fn overrides(self) -> crate::config::Overrides {
        crate::config::Overrides {
            store_url: self.store_url,
            store_credentials_file: self.store_credentials_file,
            store_ca_file: self.store_ca_file,
            store_fingerprint: self.store_fingerprint,
            ..Default::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum HookCommand {
    /// Reject a push whose desired state does not validate (reads git's ref updates on stdin).
    PreReceive {
        /// The branch whose pushes are checked; pushes to other refs pass.
        #[arg(long, default_value = "main")]
        branch: String,
        /// The desired-state directory inside the repository.
        #[arg(long, default_value = "desired-state")]
        path: String,
    },
    /// Wake the daemon through its signed webhook after a push.
    PostReceive {
        /// The daemon's listener, e.g. http://127.0.0.1:9090.
        #[arg(long)]
        url: String,
        /// The file holding the secret the webhook is signed with (the daemon's own).
        #[arg(long)]
        webhook_secret_file: PathBuf,
    },
    /// Install pre-receive (and, with --notify-url, post-receive) into a bare repository.
    Install {
        /// The bare repository the desired state is pushed to.
        repo: PathBuf,
        /// The branch whose pushes are checked.
        #[arg(long, default_value = "main")]
        branch: String,
        /// The desired-state directory inside the repository.
        #[arg(long, default_value = "desired-state")]
        path: String,
        /// The daemon's listener, e.g. http://127.0.0.1:9090.
        #[arg(long)]
        notify_url: Option<String>,
        /// With --notify-url: the file holding the webhook's secret (the daemon's own),
        /// written into the hook as an absolute path.
        #[arg(long)]
        webhook_secret_file: Option<PathBuf>,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::desired::units::parse_duration(text).map_err(|e| e.to_string())
}

/// How to reach the RAPI. The password is read from a file or GANETI_RAPI_PASSWORD,
/// never taken from the command line.
#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    /// A YAML file with any of rapiUrl, rapiUser, rapiPasswordFile, rapiCaFile,
    /// rapiFingerprint, stateDir, store (or storeUrl with storeCredentialsFile and
    /// storeCaFile or storeFingerprint), secretsIdentityFile and secretsNotify (see the
    /// guide's Reconcile chapter); flags and environment take precedence.
    #[arg(long, env = "GANETI_OPERATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Defaults to cluster.rapiUrl in the desired state.
    #[arg(long, env = "GANETI_RAPI_URL")]
    rapi_url: Option<String>,
    /// The RAPI user (Ganeti's rapi_users file).
    #[arg(long, env = "GANETI_RAPI_USER")]
    rapi_user: Option<String>,
    /// A file holding the RAPI password (GANETI_RAPI_PASSWORD also works).
    #[arg(long, env = "GANETI_RAPI_PASSWORD_FILE")]
    rapi_password_file: Option<PathBuf>,
    /// Trust the RAPI certificate signed by this CA.
    #[arg(long, env = "GANETI_RAPI_CA_FILE")]
    rapi_ca_file: Option<PathBuf>,
    /// Trust exactly the certificate with this SHA-256 fingerprint (stock Ganeti).
    #[arg(long, env = "GANETI_RAPI_FINGERPRINT")]
    rapi_fingerprint: Option<String>,
    /// Where per-object backoff state is kept.
    #[arg(long, env = "GANETI_OPERATOR_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The artifact store's directory: images, boot pointers (needed when the desired
    /// state sets cluster.store).
    #[arg(long, env = STORE_ENV)]
    store: Option<PathBuf>,
    #[command(flatten)]
    dav: DavArgs,
    /// A file holding the operator's age identity or SSH private key (ed25519 or RSA),
    /// which opens the secret sources; never the key itself on the command line.
    #[arg(long, env = "GANETI_OPERATOR_IDENTITY_FILE")]
    secrets_identity_file: Option<PathBuf>,
}

const STORE_ENV: &str = "GANETI_OPERATOR_STORE";

impl ConnectionArgs {
    fn overrides(self) -> crate::config::Overrides {
        crate::config::Overrides {
            config_file: self.config,
            rapi_url: self.rapi_url,
            rapi_user: self.rapi_user,
            rapi_password_file: self.rapi_password_file,
            rapi_ca_file: self.rapi_ca_file,
            rapi_fingerprint: self.rapi_fingerprint,
            state_dir: self.state_dir,
            store: self.store,
            secrets_identity_file: self.secrets_identity_file,
            ..self.dav.overrides()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Exit codes shared by every subcommand.
pub mod exit {
    pub const OK: u8 = 0;
    /// Invalid input, or the operation failed.
    pub const FAILURE: u8 = 1;
    /// `reconcile`: changes are pending (Terraform's `-detailed-exitcode`).
    pub const CHANGES: u8 = 2;
    /// A command line that does not parse (sysexits' EX_USAGE), kept apart from 2.
    pub const USAGE: u8 = 64;
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILURE
        }
    };
    ExitCode::from(code)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    log_format::choose(cli.log_format);
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Validate { dir, output, store } => {
            validate::run(&dir, output, &store.overrides(), &mut stdout)
        }
        Command::Init {
            from_cluster: _,
            dir,
            force,
            connection,
        } => init_cmd::run(&dir, force, &connection.overrides(), &mut stdout),
        Command::Reconcile {
            dir,
            dry_run,
            server_check,
            output,
            out,
            apply_plan,
            targets,
            excludes,
            connection,
        } => reconcile::run(
            reconcile::ReconcileArgs {
                dir,
                dry_run,
                server_check,
                output,
                out,
                apply_plan,
                targets,
                excludes,
                connection: connection.overrides(),
            },
            &mut stdout,
        ),
        Command::Run {
            dir,
            git_repo,
            git_branch,
            git_path,
            listen,
            webhook_secret_file,
            resync_interval,
            shutdown_grace,
            serve_store,
            listener,
            connection,
        } => {
            let source = match git_repo {
                Some(repo) => crate::source::Source::Git {
                    repo,
                    rev: git_branch,
                    path: git_path,
                },
                None => crate::source::Source::Dir(dir.unwrap_or_else(|| "desired-state".into())),
            };
            run_cmd::run(run_cmd::RunArgs {
                source,
                listen,
                webhook_secret_file,
                resync: resync_interval,
                shutdown_grace,
                serve_store,
                listener,
                connection: connection.overrides(),
            })
        }
        Command::Status { url, output } => status_cmd::run(&url, output, &mut stdout),
        Command::Events {
            url,
            follow,
            since,
            json,
        } => events_cmd::run(
            events_cmd::EventsArgs {
                url,
                follow,
                since,
                json,
            },
            &mut stdout,
        ),
        Command::Hook(HookCommand::PreReceive { branch, path }) => {
            hook::pre_receive(&branch, &path, &mut std::io::stdin().lock())
        }
        Command::Hook(HookCommand::PostReceive {
            url,
            webhook_secret_file,
        }) => hook::post_receive(&url, &webhook_secret_file, &mut std::io::stdin().lock()),
        Command::Hook(HookCommand::Install {
            repo,
            branch,
            path,
            notify_url,
            webhook_secret_file,
        }) => hook::install(
            hook::Install {
                repo,
                branch,
                path,
                notify_url,
                webhook_secret_file,
            },
            &mut stdout,
        ),
        Command::Schema => schema_cmd::run(&mut stdout),
        Command::Completions { shell } => docs_cmd::completions(shell, &mut stdout),
        Command::Man => docs_cmd::man(&mut stdout),
        Command::Reference { out } => reference::run(&out, &mut stdout),
        Command::Rollout(command) => rollout_cmd::run(command, &mut stdout),
        Command::Image(ImageCommand::Import {
            class,
            path,
            kernel,
            initrd,
            squashfs,
            cmdline,
            store,
        }) => image::import_cmd(
            image::ImportArgs {
                class,
                path,
                kernel,
                initrd,
                squashfs,
                cmdline,
            },
            &store.overrides(),
            &mut stdout,
        ),
        Command::Image(ImageCommand::List { desired, store }) => {
            image::list_cmd(&store.overrides(), desired.as_deref(), &mut stdout)
        }
        Command::Image(ImageCommand::Verify { store }) => {
            image::verify_cmd(&store.overrides(), &mut stdout)
        }
        Command::Image(ImageCommand::Gc {
            dir,
            keep,
            dry_run,
            connection,
        }) => image::gc_cmd(&connection.overrides(), &dir, keep, dry_run, &mut stdout),
        Command::Secrets(SecretsCommand::Status { dir, output, args }) => {
            secrets_cmd::status(&dir, &args.overrides(), output, &mut stdout)
        }
        Command::Secrets(SecretsCommand::Rekey { dir, args }) => {
            secrets_cmd::rekey(&dir, &args.overrides(), &mut stdout)
        }
        Command::Store(StoreCommand::Serve { listen, store }) => {
            image::serve_cmd(&store.overrides(), listen)
        }
    }
}

/// Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org).
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}
