use std::process::ExitCode;

fn main() -> ExitCode {
    ganeti_operator::cli::main()
}
