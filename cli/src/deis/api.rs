//! The controller's REST answers that the CLI reads, typed.
//!
//! Only the fields the CLI shows are declared; Deis servers add fields, which are
//! ignored. Missing fields take their empty value, as the Deis CLI shows them. `--json`
//! prints the answer as the server sent it, never these structs.

use std::collections::BTreeMap;

use serde::Deserialize;
pub use workflow_clients::registry::ImportEvent;

/// A user (`/v2/auth/register/`, `/v2/auth/whoami/`, `/v2/users/`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Email, possibly empty.
    pub email: String,
    /// Administrators see and change everything.
    pub is_superuser: bool,
}

/// `/v2/auth/login/`'s and `/v2/auth/tokens/`'s answer (the latter has none for `--all`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Token {
    /// The API token.
    pub token: String,
}

/// An SSH key (`/v2/keys/`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Key {
    /// The user's name for the key.
    pub id: String,
    /// MD5 fingerprint.
    pub fingerprint: String,
    /// The key in `authorized_keys` form.
    pub public: String,
}

/// An app (`/v2/apps/`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct App {
    /// Unique id.
    pub uuid: String,
    /// The app's name.
    pub id: String,
    /// Owner's username.
    pub owner: String,
    /// Desired process counts by type.
    pub structure: BTreeMap<String, i64>,
    /// Where the router serves it (empty when the controller does not know the router).
    pub url: String,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// An app's config (`/v2/apps/<app>/config/`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Environment variables.
    pub values: BTreeMap<String, String>,
    /// Private registry settings (the password is hidden by the server).
    pub registry: BTreeMap<String, String>,
}

/// A release (`/v2/apps/<app>/releases/`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Release {
    /// Unique id.
    pub uuid: String,
    /// 1, 2, 3, ...
    pub version: i64,
    /// Who made it.
    pub owner: String,
    /// The build's uuid; none before the first build.
    pub build: Option<String>,
    /// The config's uuid.
    pub config: String,
    /// What changed ("alice added GREETING").
    pub summary: String,
    /// True when its rollout failed.
    pub failed: bool,
    /// Why the rollout failed.
    pub exception: String,
    /// Rollout state: `pending`, `deployed` or `failed` (empty from Deis controllers).
    pub state: String,
    /// The image the release runs (empty from Deis controllers and before the first build).
    pub image: String,
    /// That image's digest, `sha256:...` (empty when unknown).
    pub digest: String,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// The answer to a rollback: the new release's version.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Version {
    /// The new release's version.
    pub version: i64,
}

/// A build (`/v2/apps/<app>/builds/`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Build {
    /// Unique id.
    pub uuid: String,
    /// Who built or pulled it.
    pub owner: String,
    /// Image reference.
    pub image: String,
    /// Creation time.
    pub created: String,
    /// Git commit, empty for images.
    pub sha: String,
    /// `image`, `buildpack` or `dockerfile` (empty from a Deis controller).
    pub kind: String,
    /// The image's manifest digest.
    pub digest: String,
    /// `succeeded` or `failed` (empty from a Deis controller).
    pub state: String,
    /// Why a failed build failed.
    pub error: String,
    /// The build's output (one build only).
    pub log: Option<String>,
}

/// A process of an app (`/v2/apps/<app>/pods/`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Pod {
    /// Release it runs, `v3`.
    pub release: String,
    /// Process type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Pod name.
    pub name: String,
    /// `up`, `starting`, `crashed`, ...
    pub state: String,
}

/// A page of a list: `{"count", "next", "previous", "results"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Page<T> {
    /// Total number of items.
    #[serde(default)]
    pub count: u64,
    /// The items of this page.
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
}

/// An app's collaborators (`/v2/apps/<app>/perms/`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Perms {
    /// Their usernames.
    pub users: Vec<String>,
}

/// One JSON line of `POST /v2/apps/<app>/builds/?progress=true` (`deis pull`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PullEvent {
    /// Progress of the import: a line of text or a layer (the type registry-sync's client
    /// reports and the controller streams).
    Progress(ImportEvent),
    /// The end: the build and the release it made.
    Done {
        /// The new build.
        build: Box<Build>,
        /// The new release.
        release: Box<Release>,
    },
    /// The end: the pull failed.
    Failed {
        /// Why.
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> PullEvent {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn pull_events_by_key() {
        assert_eq!(
            event(r#"{"message": "resolving x"}"#),
            PullEvent::Progress(ImportEvent::Message("resolving x".into()))
        );
        let PullEvent::Progress(ImportEvent::Layer(layer)) = event(
            r#"{"layer": {"digest": "sha256:ab", "size": 3, "copied": 1, "status": "copying"}}"#,
        ) else {
            panic!("not a layer");
        };
        assert_eq!((layer.size, layer.status.as_str()), (3, "copying"));
        let PullEvent::Done { build, release } = event(
            r#"{"build": {"image": "r/api@sha256:1", "port": 8080}, "release": {"version": 2, "new": 1}}"#,
        ) else {
            panic!("not done");
        };
        assert_eq!(
            (build.image.as_str(), release.version),
            ("r/api@sha256:1", 2)
        );
        assert_eq!(
            event(r#"{"error": "no such image", "status": 404}"#),
            PullEvent::Failed {
                error: "no such image".into()
            }
        );
        assert!(serde_json::from_str::<PullEvent>(r#"{"something": "new"}"#).is_err());
    }

    #[test]
    fn unknown_and_missing_fields_are_fine() {
        let r: Release =
            serde_json::from_str(r#"{"version": 3, "summary": "s", "extra": [1]}"#).unwrap();
        assert_eq!((r.version, r.summary.as_str(), r.build), (3, "s", None));
        let p: Page<Pod> =
            serde_json::from_str(r#"{"count": 1, "next": null, "results": [{"type": "web"}]}"#)
                .unwrap();
        assert_eq!(p.results[0].kind, "web");
    }
}
