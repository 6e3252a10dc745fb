//! Where releases run: the runtime crate's contract ([`Runtime`], [`Desired`], [`Rollout`],
//! the [`routes`] table), re-exported, plus [`LedgerOnly`].
//!
//! [`LedgerOnly`] is what runs before a real runtime is configured: every rollout is
//! immediately ready, nothing runs and no processes are reported (`deis ps` is empty), so
//! the releases ledger works on its own.

use std::time::Duration;

pub use workflow_runtime::*;

/// No runtime configured: rollouts are recorded and succeed at once, nothing runs.
#[derive(Debug, Default)]
pub struct LedgerOnly;

#[async_trait::async_trait]
impl Runtime for LedgerOnly {
    async fn apply(&self, _desired: &Desired) -> Result<Rollout> {
        Ok(Rollout::Ready)
    }
    async fn destroy(&self, _app: &str, _app_id: &str) -> Result<()> {
        Ok(())
    }
    async fn processes(&self, _app: &str) -> Result<Vec<Process>> {
        Ok(Vec::new())
    }
    async fn restart(&self, _app: &str, _which: &Restart) -> Result<Vec<Process>> {
        Ok(Vec::new())
    }
    async fn run(
        &self,
        desired: &Desired,
        _command: &str,
        _timeout: Duration,
    ) -> Result<RunOutput> {
        Err(Error::Invalid(format!(
            "cannot run a one-off process for {}: no runtime is configured on this controller",
            desired.app
        )))
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            memory_limits: false,
            cpu_limits: false,
        }
    }
}
