//! Dockerfile builds through the Docker or Podman Engine API (bollard).
//!
//! The context is the pushed tree as a gzip tar written to the work dir and streamed to the
//! engine (honouring `.dockerignore` patterns, without `!` exceptions); build output is
//! streamed line by line; the engine's layer cache is kept between pushes (no `--no-cache`,
//! intermediate containers removed). Build args come from the app's config only when it sets
//! `DEIS_DOCKER_BUILD_ARGS_ENABLED=1`, as in Deis. The engine pushes the image into the
//! platform registry with the builder's credential; the digest is read back from the registry.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use futures::StreamExt;

use super::engine::BuildSettings;
use super::push::{BUILDER_USER, Pusher};
use super::{BuildKind, BuildRequest, BuiltImage, Output, layer, source};
use crate::error::{Error, Result};

/// The config var that lets the app's config reach the build as build args.
pub const BUILD_ARGS_OPT_IN: &str = "DEIS_DOCKER_BUILD_ARGS_ENABLED";

/// Connects to the engine at `socket` (`unix:///path` or a path); the error names it.
/// Removes the engine's references to repository `<registry>/<app>` (the builder's
/// `git-<sha>` tags, which are the layer cache of Dockerfile builds, and images the local
/// runtime pulled from the platform registry); layers no other image uses go with them.
/// Best effort for a destroyed app: no engine, or an image still in use, removes nothing.
/// Answers how many references went.
pub async fn forget_images(socket: &str, registry: &str, app: &str) -> usize {
    let Ok(docker) = connect(socket).await else {
        return 0;
    };
    let repo = format!("{registry}/{app}");
    let filters = HashMap::from([("reference", vec![repo.clone()])]);
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .filters(&filters)
        .digests(true)
        .build();
    let Ok(images) = docker.list_images(Some(opts)).await else {
        return 0;
    };
    let mut removed = 0;
    for image in images {
        let refs = image.repo_tags.iter().chain(image.repo_digests.iter());
        // Only this repository's names: an image also tagged for another app keeps those.
        for r in refs.filter(|r| {
            r.strip_prefix(&repo)
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
        }) {
            match docker
                .remove_image(
                    r,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await
            {
                Ok(_) => removed += 1,
                Err(e) => tracing::debug!(image = %r, error = %e, "image kept"),
            }
        }
    }
    removed
}

pub async fn connect(socket: &str) -> Result<Docker> {
    let path = socket.strip_prefix("unix://").unwrap_or(socket);
    let docker = Docker::connect_with_socket(path, 600, bollard::API_DEFAULT_VERSION)
        .map_err(|e| Error::Docker(format!("cannot use the engine socket {socket}: {e}")))?;
    docker.ping().await.map_err(|e| {
        Error::Docker(format!(
            "no Docker or Podman engine answers on {socket}: {e}"
        ))
    })?;
    Ok(docker)
}

/// `.dockerignore` patterns of `root` (comments, blanks and `!` exceptions dropped).
fn dockerignore(root: &Path) -> Vec<String> {
    match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(t) if t.len() <= 1 << 20 => t
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
            .map(|l| l.trim_start_matches("./").to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Builds `req` with its Dockerfile and pushes it to the platform registry.
pub async fn build(
    settings: &BuildSettings,
    pusher: &Pusher,
    req: &BuildRequest,
    work: &Path,
    out: &Output,
) -> Result<BuiltImage> {
    let _ = out.send("-----> Dockerfile app detected".to_string()).await;
    let docker = connect(&settings.docker_socket).await?;
    let patterns = dockerignore(&req.source_dir);
    let (root, ctx) = (req.source_dir.clone(), work.join("context.tar.gz"));
    let ctx_layer = tokio::task::spawn_blocking(move || {
        let skip = |rel: &str| {
            rel == ".git"
                || (rel != "Dockerfile"
                    && patterns
                        .iter()
                        .any(|p| source::ignore_matches(&format!("/{p}"), rel)))
        };
        layer::write_layer_filtered(&root, "", &skip, &ctx)
    })
    .await
    .map_err(|e| Error::Docker(format!("context: {e}")))??;

    let tag = format!("git-{}", &req.sha[..req.sha.len().min(12)]);
    let image = format!("{}/{}:{}", pusher.host(), req.app, tag);
    let mut opts = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&image)
        .rm(true)
        .forcerm(true);
    if req.config.get(BUILD_ARGS_OPT_IN).map(String::as_str) == Some("1") {
        let args: HashMap<String, String> = req
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        opts = opts.buildargs(&args);
    }
    let f = tokio::fs::File::open(&ctx_layer.path)
        .await
        .map_err(|e| Error::io("open", ctx_layer.path.display().to_string(), e))?;
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024));
    let mut stream = docker.build_image(opts.build(), None, Some(body));
    let mut total: u64 = 0;
    while let Some(item) = stream.next().await {
        // The engine reports a failing step (`RUN false`) as an error in the stream.
        let info = item.map_err(|e| {
            let e = e.to_string();
            let e = e.strip_prefix("Docker stream error: ").unwrap_or(&e);
            Error::Docker(format!("Dockerfile build failed: {e}"))
        })?;
        if let Some(detail) = info.error_detail {
            return Err(Error::Docker(format!(
                "Dockerfile build failed: {}",
                detail.message.unwrap_or_default()
            )));
        }
        if let Some(text) = info.stream.or(info.status) {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                total += line.len() as u64 + 1;
                if total > settings.max_output {
                    return Err(Error::OutputLimit {
                        step: "docker build".into(),
                        limit: settings.max_output,
                    });
                }
                let _ = out.send(format!("       {line}")).await;
            }
        }
    }
    let port = docker
        .inspect_image(&image)
        .await
        .ok()
        .and_then(|i| i.config)
        .and_then(|c| c.exposed_ports)
        .and_then(|p| {
            let mut ports: Vec<u16> = p
                .iter()
                .filter_map(|k| k.split('/').next().and_then(|n| n.parse().ok()))
                .collect();
            ports.sort();
            ports.first().copied()
        });

    let _ = out.send(format!("-----> Pushing image {image}")).await;
    let creds = (!settings.registry.builder_key.is_empty()).then(|| DockerCredentials {
        username: Some(BUILDER_USER.to_string()),
        password: Some(settings.registry.builder_key.clone()),
        serveraddress: Some(pusher.host().to_string()),
        ..Default::default()
    });
    let name = format!("{}/{}", pusher.host(), req.app);
    let mut push = docker.push_image(
        &name,
        Some(PushImageOptionsBuilder::new().tag(&tag).build()),
        creds,
    );
    while let Some(item) = push.next().await {
        let info = item.map_err(|e| Error::Docker(format!("push of {image}: {e}")))?;
        if let Some(detail) = info.error_detail {
            return Err(Error::Docker(format!(
                "push of {image} failed: {}",
                detail.message.unwrap_or_default()
            )));
        }
    }
    // Read the manifest back from the registry: its digest is what the release records.
    let (manifest, digest) = pusher
        .pull_manifest_raw(&pusher.reference(&req.app, &tag))
        .await?;
    let m: serde_json::Value = serde_json::from_slice(&manifest).map_err(|e| Error::Registry {
        op: "read manifest",
        target: image.clone(),
        message: e.to_string(),
    })?;
    let layers = m["layers"].as_array().cloned().unwrap_or_default();
    let size = layers.iter().filter_map(|l| l["size"].as_u64()).sum();
    let _ = out.send(format!("-----> Done: {}@{digest}", req.app)).await;
    Ok(BuiltImage {
        reference: format!("{}/{}@{digest}", pusher.host(), req.app),
        digest,
        process_types: Default::default(),
        kind: BuildKind::Dockerfile,
        layers: layers.len(),
        size,
        port,
    })
}
