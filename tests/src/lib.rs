//! End-to-end test helpers: start daemons in this process on ephemeral ports.
//!
//! - [`git`]: a builder beside the controller, and the git client
//! - [`fixtures`]: build fixtures (a caching buildpack, a busybox base image), shared by path
//!   with the `workflow up` stories in `cli/tests`

pub mod fixtures;
pub mod git;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workflow_controller::domain::RegistrationMode;

/// A controller serving REST and gRPC on ephemeral loopback ports.
pub struct RunningController {
    /// REST base URL.
    pub http: String,
    /// gRPC URL.
    pub grpc: String,
    /// The builder key its hooks accept.
    pub builder_key: String,
    /// Cancelling stops it.
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<workflow_controller::Result<()>>,
    _dir: tempfile::TempDir,
}

impl RunningController {
    /// Starts a controller on a fresh SQLite store.
    pub async fn start() -> anyhow::Result<RunningController> {
        let dir = tempfile::tempdir()?;
        let builder_key = "e2e-builder-key".to_string();
        let config = workflow_controller::Config {
            registration: RegistrationMode::Enabled,
            ..workflow_controller::Config::for_tests(
                &dir.path().join("c.db").to_string_lossy(),
                &builder_key,
            )
        };
        let ctl =
            workflow_controller::open(&config, Arc::new(workflow_controller::runtime::LedgerOnly))
                .await?;
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let grpc = TcpListener::bind("127.0.0.1:0").await?;
        let (h, g) = (http.local_addr()?, grpc.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(workflow_controller::serve(
            ctl,
            workflow_controller::Listeners { http, grpc },
            workflow_controller::Shutdown::new(shutdown.clone(), std::time::Duration::from_secs(5)),
        ));
        Ok(RunningController {
            http: format!("http://{h}"),
            grpc: format!("http://{g}"),
            builder_key,
            shutdown,
            task,
            _dir: dir,
        })
    }

    /// Stops it and waits until both servers returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(())
    }
}
