//! `workflow-logger ship|aggregate|query`: the logger daemons on their own (the same subcommands
//! `workflow logger` has); used by the fault-injection test as a real child process.

use clap::Parser;
use workflow_logger::cli::{LoggerCommand, run_command};

#[derive(Debug, Parser)]
#[command(name = "workflow-logger", version)]
struct Cli {
    #[command(subcommand)]
    command: LoggerCommand,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    workflow_common::telemetry::init("info", false);
    let shutdown = workflow_common::shutdown::on_signals();
    match run_command(cli.command, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
