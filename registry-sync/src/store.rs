//! Object storage, from the shared `workflow-storage` crate (re-exported so the registry's
//! modules and tests keep one path to it); store errors convert into [`crate::Error`].

pub use workflow_storage::*;
