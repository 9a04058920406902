//! The command-line reference as markdown, rendered from clap's definition of the command
//! line (the same one `--help`, the completions and the manual page come from): every
//! subcommand with its usage, arguments, environment variables and defaults.

use super::{cell, one_line};

/// The whole page for `root`, which must be the top-level command.
pub fn render(mut root: clap::Command) -> String {
    // Building fills in the usage lines and bin names of every subcommand.
    root.build();
    let mut out = String::new();
    out.push_str("# The command line\n\n");
    out.push_str(super::GENERATED_NOTE);
    out.push_str(
        "\nEvery subcommand, with its arguments. An argument with an environment variable \
         takes its value from it when the flag is not given. `--help` on any subcommand \
         prints the same.\n",
    );
    command(&mut root, &mut out);
    out
}

fn command(cmd: &mut clap::Command, out: &mut String) {
    let name = cmd
        .get_bin_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    out.push_str(&format!("\n## {name}\n\n"));
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        out.push_str(about.to_string().trim());
        out.push_str("\n\n");
    }
    let usage = cmd.render_usage().to_string();
    out.push_str("```text\n");
    out.push_str(usage.trim());
    out.push_str("\n```\n");
    arguments(cmd, out);
    let subcommands: Vec<(String, String)> = cmd
        .get_subcommands()
        .filter(|s| shown(s))
        .map(|s| {
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            (s.get_name().to_owned(), about)
        })
        .collect();
    if !subcommands.is_empty() {
        out.push_str("\n| subcommand | what |\n|---|---|\n");
        for (sub, about) in &subcommands {
            let anchor = format!("{name} {sub}").replace(' ', "-").to_lowercase();
            out.push_str(&format!(
                "| [`{sub}`](#{anchor}) | {} |\n",
                cell(&one_line(about))
            ));
        }
    }
    for sub in cmd.get_subcommands_mut() {
        if shown(sub) {
            command(sub, out);
        }
    }
}

/// Hidden subcommands are not for readers, and clap's own `help` subcommand says nothing
/// `--help` does not.
fn shown(cmd: &clap::Command) -> bool {
    !cmd.is_hide_set() && cmd.get_name() != "help"
}

fn arguments(cmd: &clap::Command, out: &mut String) {
    let args: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    if args.is_empty() {
        return;
    }
    out.push_str("\n| argument | environment | default | what |\n|---|---|---|---|\n");
    for arg in args {
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| one_line(&h.to_string()))
            .unwrap_or_default();
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        let mut what = help;
        if !values.is_empty() && arg.get_action().takes_values() {
            if !what.is_empty() && !what.ends_with('.') {
                what.push('.');
            }
            what.push_str(&format!(" One of {}.", values.join(", ")));
        }
        out.push_str(&format!(
            "| `{}` | {env} | {} | {} |\n",
            cell(&spelling(arg)),
            defaults.join(", "),
            cell(what.trim())
        ));
    }
}

/// How the argument is written: `--rapi-url <RAPI_URL>`, `--dry-run`, `[DIR]`.
fn spelling(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string());
    match arg.get_long() {
        Some(long) if arg.get_action().takes_values() => format!("--{long} <{value}>"),
        Some(long) => format!("--{long}"),
        None if arg.is_required_set() => format!("<{value}>"),
        None => format!("[{value}]"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn every_subcommand_has_a_section_and_every_flag_a_row() {
        let page = super::render(crate::cli::Cli::command());
        for heading in [
            "## ganeti-operator\n",
            "## ganeti-operator reconcile\n",
            "## ganeti-operator hook install\n",
            "## ganeti-operator image gc\n",
        ] {
            assert!(page.contains(heading), "{heading} in\n{page}");
        }
        assert!(
            page.contains("| `--rapi-url <RAPI_URL>` | `GANETI_RAPI_URL` |"),
            "{page}"
        );
        assert!(page.contains("| `[DIR]` |  | `desired-state` |"), "{page}");
        assert!(
            page.contains("`text` for people, `json` for scripts. One of `text`, `json`."),
            "{page}"
        );
        assert!(!page.contains("## ganeti-operator help"), "{page}");
        assert!(page.contains("[`reconcile`](#ganeti-operator-reconcile)"));
    }

    /// The page is the same whatever the environment holds: environment variables are
    /// named, never their values (a password could be in one).
    #[test]
    fn the_page_names_environment_variables_but_not_their_values() {
        let page = super::render(crate::cli::Cli::command());
        assert!(page.contains("`GANETI_RAPI_PASSWORD_FILE`"));
        assert!(!page.contains("GANETI_RAPI_PASSWORD_FILE="), "{page}");
    }
}
