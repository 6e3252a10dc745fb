//! Container releases through the Docker Engine API.
//!
//! A container process is created with the workflow labels (`app`, `app_id`, `type`,
//! `version`, `heritage=workflow`), its env, `PORT` published on 127.0.0.1 at the port the
//! runtime chose, and memory/CPU limits; the supervisor polls its state. Its log is Docker's
//! json-file log, linked into the log dir under the kubelet name (as kubelet links
//! `/var/log/containers`), which the logger's shipper reads.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt;

use super::proc::Record;
use crate::{Error, PullCredentials, Result, RunOutput};

fn client() -> Result<Docker, String> {
    Docker::connect_with_local_defaults()
        .map_err(|e| format!("connecting to the Docker engine: {e}"))
}

/// Removes every container labelled with the app's uuid, running or not: what a crash
/// between creating a container and recording it left behind (a destroyed app's name, made
/// again, has another uuid). Best effort: without an engine there is nothing to remove.
pub async fn remove_app_containers(app_id: &str) -> usize {
    let Ok(docker) = client() else {
        return 0;
    };
    let filters = HashMap::from([("label", vec![format!("app_id={app_id}")])]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let Ok(found) = docker.list_containers(Some(opts)).await else {
        return 0;
    };
    let mut removed = 0;
    for id in found.into_iter().filter_map(|c| c.id) {
        let gone = docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        if gone.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Makes sure `reference` is in the engine: an image already there (by digest, as releases
/// name them) is not pulled again.
pub async fn ensure_image(reference: &str, credentials: Option<&PullCredentials>) -> Result<()> {
    let docker = client().map_err(Error::Backend)?;
    if docker.inspect_image(reference).await.is_ok() {
        return Ok(());
    }
    let options = CreateImageOptionsBuilder::new()
        .from_image(reference)
        .build();
    let creds = credentials.map(|c| DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.clone()),
        ..Default::default()
    });
    let mut stream = docker.create_image(Some(options), None, creds);
    while let Some(item) = stream.next().await {
        item.map_err(|e| Error::Backend(format!("pulling {reference}: {e}")))?;
    }
    Ok(())
}

/// Creates and starts the container of `rec`; returns its id and its IP address (probes
/// go there: the published port answers even when the app does not, through docker-proxy).
pub async fn start(rec: &Record) -> Result<(String, Option<String>), String> {
    let docker = client()?;
    let c = rec
        .launch
        .container
        .as_ref()
        .ok_or_else(|| format!("{} is not a container process", rec.name))?;
    // A container of the same name left by a crash of ours is replaced.
    let _ = docker
        .remove_container(
            &rec.name,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    let port_key = format!("{}/tcp", c.container_port);
    let body = ContainerCreateBody {
        image: Some(c.image.clone()),
        env: Some(
            rec.launch
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        labels: Some(c.labels.clone().into_iter().collect()),
        exposed_ports: Some(vec![port_key.clone()]),
        entrypoint: (!rec.launch.command.is_empty()).then(|| vec!["/bin/sh".into(), "-c".into()]),
        cmd: (!rec.launch.command.is_empty()).then(|| vec![rec.launch.command.clone()]),
        host_config: Some(HostConfig {
            memory: rec.launch.memory.and_then(|m| i64::try_from(m).ok()),
            nano_cpus: c
                .cpu_millis
                .and_then(|m| i64::try_from(m.saturating_mul(1_000_000)).ok()),
            port_bindings: Some(HashMap::from([(
                port_key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(rec.port.to_string()),
                }]),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&rec.name).build()),
            body,
        )
        .await
        .map_err(|e| format!("creating container {}: {e}", rec.name))?;
    if let Err(e) = docker.start_container(&created.id, None).await {
        // Not recorded as running, so nothing else would ever remove it.
        let _ = docker
            .remove_container(
                &created.id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        return Err(format!("starting container {}: {e}", rec.name));
    }
    let info = docker
        .inspect_container(&created.id, None)
        .await
        .map_err(|e| format!("inspecting container {}: {e}", rec.name))?;
    if let Some(log) = info.log_path.filter(|p| !p.is_empty()) {
        let _ = std::fs::remove_file(&rec.log);
        if let Err(e) = std::os::unix::fs::symlink(Path::new(&log), &rec.log) {
            tracing::warn!(log = %rec.log.display(), error = %e, "cannot link the container log");
        }
    }
    let ip = info
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|nets| {
            nets.into_values()
                .find_map(|e| e.ip_address.filter(|ip| !ip.is_empty()))
        });
    Ok((created.id, ip))
}

/// `Ok(None)` while running; `Ok(Some(reason))` once exited; `Err` when it is gone.
pub async fn exited(id: &str) -> Result<Option<String>, String> {
    let docker = client()?;
    let info = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| format!("container {id} is gone: {e}"))?;
    let state = info.state.unwrap_or_default();
    if state.running.unwrap_or(false) {
        return Ok(None);
    }
    let reason = if state.oom_killed.unwrap_or(false) {
        "killed: out of memory".to_string()
    } else {
        format!("exited with code {}", state.exit_code.unwrap_or(-1))
    };
    Ok(Some(reason))
}

/// Stops (SIGTERM, then SIGKILL after `grace`) and removes a container.
pub async fn stop(id: &str, grace: Duration) {
    let Ok(docker) = client() else { return };
    let t = i32::try_from(grace.as_secs().max(1)).unwrap_or(i32::MAX);
    let _ = docker
        .stop_container(id, Some(StopContainerOptionsBuilder::new().t(t).build()))
        .await;
    let _ = docker
        .remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
}

/// A one-off container (`deis run`): its image, name, labels, env and limits.
#[derive(Debug, Clone)]
pub struct OneOff {
    /// Image reference (already in the engine: see [`ensure_image`]).
    pub image: String,
    /// Container name, `<app>-run-<5 hex>`.
    pub name: String,
    /// The workflow labels, with `type=run`.
    pub labels: HashMap<String, String>,
    /// Environment.
    pub env: Vec<String>,
    /// Run by `/bin/sh -c`.
    pub command: String,
    /// Memory limit, bytes.
    pub memory: Option<u64>,
}

/// Runs `one` to completion (or `timeout`, then kills it), collecting stdout and stderr up
/// to `cap` bytes; the container is removed whatever happens.
pub async fn run(one: &OneOff, timeout: Duration, cap: usize) -> Result<RunOutput> {
    let docker = client().map_err(Error::Backend)?;
    let body = ContainerCreateBody {
        image: Some(one.image.clone()),
        env: Some(one.env.clone()),
        labels: Some(one.labels.clone()),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        cmd: Some(vec![one.command.clone()]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        host_config: Some(HostConfig {
            memory: one.memory.and_then(|m| i64::try_from(m).ok()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&one.name).build()),
            body,
        )
        .await
        .map_err(|e| Error::Backend(format!("creating container {}: {e}", one.name)))?;
    let id = created.id;
    let result = run_created(&docker, &id, timeout, cap).await;
    let _ = docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    result
}

async fn run_created(
    docker: &Docker,
    id: &str,
    timeout: Duration,
    cap: usize,
) -> Result<RunOutput> {
    docker
        .start_container(id, None)
        .await
        .map_err(|e| Error::Backend(format!("starting container {id}: {e}")))?;
    let wait = async {
        let mut s = docker.wait_container(id, None);
        match s.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(Error::Backend(format!("waiting for container {id}: {e}"))),
            None => Err(Error::Backend(format!(
                "waiting for container {id}: no answer"
            ))),
        }
    };
    let (code, timed_out) = match tokio::time::timeout(timeout, wait).await {
        Ok(code) => (code?, false),
        Err(_) => {
            let _ = docker
                .kill_container(
                    id,
                    Some(KillContainerOptionsBuilder::new().signal("KILL").build()),
                )
                .await;
            (137, true)
        }
    };
    // stdout and stderr interleaved as the engine logged them.
    let mut output = Vec::new();
    let mut truncated = false;
    let mut logs = docker.logs(
        id,
        Some(
            LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(false)
                .build(),
        ),
    );
    while let Some(chunk) = logs.next().await {
        let chunk =
            chunk.map_err(|e| Error::Backend(format!("reading the output of {id}: {e}")))?;
        let bytes = chunk.into_bytes();
        let room = cap.saturating_sub(output.len());
        output.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if bytes.len() > room {
            truncated = true;
            break;
        }
    }
    let mut output = String::from_utf8_lossy(&output).into_owned();
    if truncated {
        output.push_str(&format!("\n[output truncated at {cap} bytes]\n"));
    }
    if timed_out {
        output.push_str(&format!("\n[killed after {timeout:?}]\n"));
    }
    Ok(RunOutput {
        exit_code: i32::try_from(code).unwrap_or(-1),
        output,
    })
}
