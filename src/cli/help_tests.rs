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
