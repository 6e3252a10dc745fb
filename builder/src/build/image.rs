//! Image assembly: the OCI image config and manifest for an app layer on an optional stack,
//! serialized canonically (sorted keys, no timestamps) so the same inputs give the same
//! manifest digest, and pushed with [`super::push::Pusher`].

use std::collections::BTreeMap;

use oci_spec::image::{
    Arch, ConfigBuilder, DescriptorBuilder, Digest, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use super::BuildKind;
use super::layer::Layer;
use super::push::{Blob, CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Pusher};
use crate::error::{Error, Result};

/// Config label holding the source commit.
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";
/// Config label holding the build kind (`buildpack` / `dockerfile`).
pub const LABEL_KIND: &str = "sh.deis.workflow.build-kind";
/// Config label holding the process types as a JSON object.
pub const LABEL_PROCESS_TYPES: &str = "sh.deis.workflow.process-types";
/// Config label naming the buildpack that compiled the app.
pub const LABEL_BUILDPACK: &str = "sh.deis.workflow.buildpack";

/// A stack image already in the platform registry, whose layers come first.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Repository in the platform registry.
    pub repository: String,
    /// Its layers (descriptors as in its manifest).
    pub layers: Vec<oci_client::manifest::OciDescriptor>,
    /// Its config's `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// Its config's Env (kept unless the app sets the same variable).
    pub env: Vec<String>,
}

impl Stack {
    /// Reads the stack `reference` (`repo:tag` in the platform registry).
    pub async fn fetch(pusher: &Pusher, reference: &str) -> Result<Stack> {
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        let r = pusher.reference(repo, tag);
        let (manifest, _digest, config) = pusher.pull_manifest_and_config(&r).await?;
        let cfg: ImageConfiguration =
            serde_json::from_str(&config).map_err(|e| Error::Registry {
                op: "read stack config",
                target: reference.to_string(),
                message: e.to_string(),
            })?;
        Ok(Stack {
            repository: repo.to_string(),
            layers: manifest.layers,
            diff_ids: cfg.rootfs().diff_ids().clone(),
            env: cfg
                .config()
                .as_ref()
                .and_then(|c| c.env().clone())
                .unwrap_or_default(),
        })
    }
}

/// What goes into the image config.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Environment (`KEY=value`), before the stack's.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Process types.
    pub process_types: BTreeMap<String, String>,
    /// Source commit.
    pub sha: String,
    /// Build kind.
    pub kind: BuildKind,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Exposed port, if any.
    pub port: Option<u16>,
}

/// Serializes with object keys sorted at every level, whatever serde_json's map order.
pub fn canonical_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut pairs: Vec<_> = m.into_iter().collect();
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(pairs.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    let v = serde_json::to_value(v).map_err(|e| Error::Config(format!("serialize: {e}")))?;
    serde_json::to_vec(&sort(v)).map_err(|e| Error::Config(format!("serialize: {e}")))
}

fn spec_err(what: &str) -> impl Fn(oci_spec::OciSpecError) -> Error + '_ {
    move |e| Error::Config(format!("build {what}: {e}"))
}

/// The image config JSON for `layers` on `stack`.
pub fn config_json(spec: &ImageSpec, stack: Option<&Stack>, layers: &[Layer]) -> Result<Vec<u8>> {
    let mut labels: std::collections::HashMap<String, String> =
        spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_REVISION.into(), spec.sha.clone());
    labels.insert(
        LABEL_KIND.into(),
        match spec.kind {
            BuildKind::Buildpack => "buildpack",
            BuildKind::Dockerfile => "dockerfile",
        }
        .into(),
    );
    labels.insert(
        LABEL_PROCESS_TYPES.into(),
        String::from_utf8(canonical_json(&spec.process_types)?).unwrap_or_default(),
    );
    let mut env = spec.env.clone();
    if let Some(s) = stack {
        let names: Vec<&str> = env.iter().filter_map(|e| e.split('=').next()).collect();
        let inherited: Vec<String> = s
            .env
            .iter()
            .filter(|e| !names.contains(&e.split('=').next().unwrap_or("")))
            .cloned()
            .collect();
        env = inherited.into_iter().chain(env).collect();
    }
    let mut config = ConfigBuilder::default()
        .env(env)
        .working_dir(spec.working_dir.clone())
        .labels(labels);
    if let Some(p) = spec.port {
        config = config.exposed_ports(vec![format!("{p}/tcp")]);
    }
    let mut diff_ids: Vec<String> = stack.map(|s| s.diff_ids.clone()).unwrap_or_default();
    diff_ids.extend(layers.iter().map(|l| l.diff_id.clone()));
    let cfg = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config.build().map_err(spec_err("config"))?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .map_err(spec_err("rootfs"))?,
        )
        .build()
        .map_err(spec_err("image config"))?;
    canonical_json(&cfg)
}

fn descriptor(media: &str, digest: &str, size: u64) -> Result<oci_spec::image::Descriptor> {
    let d: Digest = digest
        .parse()
        .map_err(|e| Error::Config(format!("digest {digest:?}: {e}")))?;
    DescriptorBuilder::default()
        .media_type(MediaType::from(media))
        .digest(d)
        .size(size)
        .build()
        .map_err(spec_err("descriptor"))
}

/// The manifest JSON for `config` with the stack's layers then `layers`.
pub fn manifest_json(config: &[u8], stack: Option<&Stack>, layers: &[Layer]) -> Result<Vec<u8>> {
    let mut descs = Vec::new();
    if let Some(s) = stack {
        for l in &s.layers {
            descs.push(descriptor(&l.media_type, &l.digest, l.size as u64)?);
        }
    }
    for l in layers {
        descs.push(descriptor(LAYER_MEDIA_TYPE, &l.digest, l.size)?);
    }
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(MANIFEST_MEDIA_TYPE))
        .config(descriptor(
            CONFIG_MEDIA_TYPE,
            &super::push::sha256_digest(config),
            config.len() as u64,
        )?)
        .layers(descs)
        .build()
        .map_err(spec_err("manifest"))?;
    canonical_json(&m)
}

/// What a push produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Manifest digest.
    pub digest: String,
    /// Number of layers.
    pub layers: usize,
    /// Total compressed layer size.
    pub size: u64,
}

/// Pushes the layers, the config and the manifest to `repo:tag`.
pub async fn push_image(
    pusher: &Pusher,
    repo: &str,
    tag: &str,
    spec: &ImageSpec,
    stack: Option<&Stack>,
    layers: &[Layer],
) -> Result<Pushed> {
    let reference = pusher.reference(repo, tag);
    pusher.login(&reference).await?;
    let mut size = 0u64;
    if let Some(s) = stack {
        let from = pusher.reference(&s.repository, "latest");
        for l in &s.layers {
            pusher.mount_blob(&reference, &from, &l.digest).await?;
            size += l.size as u64;
        }
    }
    for l in layers {
        pusher
            .push_blob(
                &reference,
                Blob::File {
                    path: &l.path,
                    digest: &l.digest,
                    size: l.size,
                },
            )
            .await?;
        size += l.size;
    }
    let config = config_json(spec, stack, layers)?;
    pusher.push_blob(&reference, Blob::Bytes(&config)).await?;
    let manifest = manifest_json(&config, stack, layers)?;
    let digest = pusher.push_manifest(&reference, manifest).await?;
    Ok(Pushed {
        digest,
        layers: layers.len() + stack.map_or(0, |s| s.layers.len()),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ImageSpec {
        ImageSpec {
            env: vec!["PATH=/app/bin:/usr/bin:/bin".into(), "HOME=/app".into()],
            working_dir: "/app".into(),
            process_types: BTreeMap::from([
                ("web".into(), "bin/web".into()),
                ("a".into(), "x".into()),
            ]),
            sha: "abc".into(),
            kind: BuildKind::Buildpack,
            labels: BTreeMap::from([("z".into(), "1".into()), ("b".into(), "2".into())]),
            port: Some(5000),
        }
    }

    fn layer() -> Layer {
        Layer {
            path: "/nonexistent".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            diff_id: format!("sha256:{}", "b".repeat(64)),
            size: 10,
        }
    }

    #[test]
    fn config_and_manifest_are_canonical_and_carry_the_labels() {
        let a = config_json(&spec(), None, &[layer()]).unwrap();
        for _ in 0..5 {
            assert_eq!(
                config_json(&spec(), None, &[layer()]).unwrap(),
                a,
                "label order leaked"
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["config"]["Labels"][LABEL_REVISION], "abc");
        assert_eq!(v["config"]["Labels"][LABEL_KIND], "buildpack");
        assert_eq!(
            v["config"]["Labels"][LABEL_PROCESS_TYPES],
            r#"{"a":"x","web":"bin/web"}"#
        );
        assert_eq!(v["config"]["WorkingDir"], "/app");
        assert_eq!(v["rootfs"]["diff_ids"][0], layer().diff_id);
        assert!(v.get("created").is_none());
        let m = manifest_json(&a, None, &[layer()]).unwrap();
        let mv: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(mv["layers"][0]["digest"], layer().digest);
        assert_eq!(mv["config"]["size"], a.len());
        assert_eq!(manifest_json(&a, None, &[layer()]).unwrap(), m);
    }

    #[test]
    fn stack_layers_come_first_and_its_env_is_inherited() {
        let stack = Stack {
            repository: "stacks/base".into(),
            layers: vec![oci_client::manifest::OciDescriptor {
                media_type: LAYER_MEDIA_TYPE.into(),
                digest: format!("sha256:{}", "c".repeat(64)),
                size: 7,
                ..Default::default()
            }],
            diff_ids: vec![format!("sha256:{}", "d".repeat(64))],
            env: vec!["PATH=/bin".into(), "TZ=UTC".into()],
        };
        let c = config_json(&spec(), Some(&stack), &[layer()]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&c).unwrap();
        assert_eq!(v["rootfs"]["diff_ids"][0], stack.diff_ids[0]);
        let env: Vec<String> = serde_json::from_value(v["config"]["Env"].clone()).unwrap();
        assert_eq!(env, ["TZ=UTC", "PATH=/app/bin:/usr/bin:/bin", "HOME=/app"]);
        let m: serde_json::Value =
            serde_json::from_slice(&manifest_json(&c, Some(&stack), &[layer()]).unwrap()).unwrap();
        assert_eq!(m["layers"][0]["digest"], stack.layers[0].digest);
        assert_eq!(m["layers"][1]["digest"], layer().digest);
    }
}
