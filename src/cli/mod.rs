//! The command line: parsing, dispatch, and exit codes. Each subcommand lives in its own file.

mod progress;
mod reconcile;
mod schema_cmd;
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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a desired-state directory and report every problem with file:line:column.
    Validate {
        /// The desired-state directory.
        #[arg(default_value = "desired-state")]
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
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
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Print the JSON schema of desired-state files.
    Schema,
}

/// How to reach the RAPI. The password is read from a file or GANETI_RAPI_PASSWORD,
/// never taken from the command line.
#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    /// A YAML file with rapiUrl, rapiUser, rapiPasswordFile, rapiCaFile or
    /// rapiFingerprint, and stateDir; flags and environment take precedence.
    #[arg(long, env = "GANETI_OPERATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Defaults to cluster.rapiUrl in the desired state.
    #[arg(long, env = "GANETI_RAPI_URL")]
    rapi_url: Option<String>,
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
}

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
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Validate { dir, output } => validate::run(&dir, output, &mut stdout),
        Command::Reconcile {
            dir,
            dry_run,
            server_check,
            output,
            connection,
        } => reconcile::run(
            reconcile::ReconcileArgs {
                dir,
                dry_run,
                server_check,
                output,
                connection: connection.overrides(),
            },
            &mut stdout,
        ),
        Command::Schema => schema_cmd::run(&mut stdout),
    }
}

/// Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org).
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}
