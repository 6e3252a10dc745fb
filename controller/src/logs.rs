//! Where the controller reads app logs from (the logger's aggregator, over gRPC).

use crate::error::Result;

/// A source of an app's recent log lines.
#[tonic::async_trait]
pub trait LogSource: Send + Sync + 'static {
    /// The last `n` lines of `app`, oldest first, formatted for display.
    async fn tail(&self, app: &str, n: u32) -> Result<Vec<String>>;
}
