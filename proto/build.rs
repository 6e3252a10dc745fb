//! Compiles the .proto files into Rust and a file descriptor set for reflection.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "workflow/controller/v1/controller.proto",
    "workflow/builder/v1/builder.proto",
    "workflow/registry/v1/registry.proto",
    "workflow/logger/v1/logger.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    // The vendored protoc: nothing has to be installed on the build machine.
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("workflow_descriptor.bin"))
        .compile_with_config(config, PROTOS, &["."])?;
    Ok(())
}
