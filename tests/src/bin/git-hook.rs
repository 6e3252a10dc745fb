//! The builder's pre-receive hook for tests (`workflow builder hook` in the real binary):
//! the tests crate cannot name another package's binary.

fn main() -> std::process::ExitCode {
    let code = workflow_builder::git::hook::client_main();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
