//! `workflow`: the server binary.

fn main() -> std::process::ExitCode {
    workflow_cli::workflow::main()
}
