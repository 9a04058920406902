//! The command line's `--help`: every argument says what it is for.

/// Every argument of every subcommand says what it is for in `--help`.
#[test]
fn every_argument_has_a_description() {
    use clap::CommandFactory as _;
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&super::Cli::command(), "ganeti-operator", &mut missing);
    assert!(
        missing.is_empty(),
        "arguments without a description: {missing:#?}"
    );
}

/// `--config`'s help names every key the config file takes (a new user found it naming
/// half of them).
#[test]
fn the_config_help_names_every_key_of_the_config_file() {
    use clap::CommandFactory as _;
    let keys = crate::config::file_keys();
    assert!(keys.len() >= 9, "{keys:?}");
    let command = super::Cli::command();
    let reconcile = command.find_subcommand("reconcile").unwrap();
    let config = reconcile
        .get_arguments()
        .find(|a| a.get_id() == "config")
        .unwrap();
    let help = config.get_help().unwrap().to_string();
    for key in keys {
        assert!(help.contains(&key), "--config's help lacks {key}: {help}");
    }
}
