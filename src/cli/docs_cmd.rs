//! `ganeti-operator completions SHELL` and `ganeti-operator man`: shell completions and
//! the manual page, generated from the command line's own definition, so neither can
//! drift from it.

use std::io::Write;

use clap::CommandFactory as _;

/// The completion script for `shell`, on `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut script);
    let mut script = String::from_utf8(script)?;
    if shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 names a subcommand's case after the binary with its `-` taken
        // for a subcommand separator (`ganeti__subcmd__operator__subcmd__reconcile`),
        // while the loop that picks the case spells it `ganeti__operator__subcmd__…`:
        // no subcommand's flags would complete.
        script = script.replace("ganeti__subcmd__operator", "ganeti__operator");
    }
    out.write_all(script.as_bytes())?;
    Ok(super::exit::OK)
}

const BIN: &str = "ganeti-operator";

/// The manual page, roff, on `out`: `ganeti-operator man | man -l -` shows it.
pub fn man(out: &mut dyn Write) -> anyhow::Result<u8> {
    clap_mangen::Man::new(super::Cli::command()).render(out)?;
    Ok(super::exit::OK)
}
