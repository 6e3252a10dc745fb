//! Where releases run. The controller tells a [`Runtime`] the desired state of an
//! app; the runtime converges to it and reports processes.
//!
//! [`LedgerOnly`] is what runs before a real runtime is configured: it accepts every
//! rollout, runs nothing and reports no processes (`deis ps` is empty), so the
//! releases ledger works on its own.

use std::collections::BTreeMap;

use crate::model::Process;

/// Everything a runtime needs to run one release of an app.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// App name (the namespace on Kubernetes).
    pub app: String,
    /// Release version being rolled out.
    pub version: i64,
    /// Image to run, none before the first build.
    pub image: Option<String>,
    /// Commands by process type.
    pub procfile: BTreeMap<String, String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Process counts by type.
    pub structure: BTreeMap<String, i64>,
}

/// A rollout or query failure, in words for the user.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

/// Runs apps.
#[tonic::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Converges the app to `desired`; returns when the new processes are ready
    /// or fails (the previous release must keep serving then).
    async fn apply(&self, desired: &Desired) -> Result<(), RuntimeError>;
    /// Removes everything the app runs.
    async fn destroy(&self, app: &str) -> Result<(), RuntimeError>;
    /// The app's processes.
    async fn processes(&self, app: &str) -> Result<Vec<Process>, RuntimeError>;
}

/// No runtime configured: rollouts are recorded, nothing runs.
#[derive(Debug, Default)]
pub struct LedgerOnly;

#[tonic::async_trait]
impl Runtime for LedgerOnly {
    async fn apply(&self, _desired: &Desired) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn destroy(&self, _app: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn processes(&self, _app: &str) -> Result<Vec<Process>, RuntimeError> {
        Ok(Vec::new())
    }
}
