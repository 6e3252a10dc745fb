//! `deis`: the user's command line.

fn main() -> std::process::ExitCode {
    workflow_cli::deis::main()
}
