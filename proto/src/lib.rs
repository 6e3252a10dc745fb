//! gRPC contracts shared by the Workflow daemons and the `deis` CLI.
//!
//! One versioned package per daemon, generated from `workflow/**/v1/*.proto`:
//! - [`controller::v1`]: auth, keys, apps, config, builds, releases, formation, perms, hooks
//! - [`builder::v1`], [`registry::v1`], [`logger::v1`]: the other daemons' services
//!
//! [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection; [`status`] is the one mapping between
//! errors and gRPC status codes.

/// Encoded descriptors of every service, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("workflow_descriptor");

/// The controller's API.
pub mod controller {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("workflow.controller.v1");
    }
}

/// The builder's API.
pub mod builder {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("workflow.builder.v1");
    }
}

/// registry-sync's API.
pub mod registry {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("workflow.registry.v1");
    }
}

/// The logger's API.
pub mod logger {
    /// Largest gRPC message either side of the logger's API accepts (a batch holds lines of
    /// up to the shipper's merge bound).
    pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

    /// Most lines one tail returns: more is refused with an error naming this cap, never
    /// silently cut (clients check it first to say so before calling).
    pub const MAX_TAIL_LINES: u32 = 10_000;

    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("workflow.logger.v1");
    }
}

pub mod status;
