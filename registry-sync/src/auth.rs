//! Registry authentication: HTTP Basic credentials checked against controller users.
//!
//! A user's username + API token are registry credentials; pushing or pulling repository
//! `<app>` needs that right on the app, which the controller answers through
//! `Hooks.CheckAccess`. A read-only node credential (for kubelet pulls) is checked locally,
//! and so is the builder's platform credential: user [`BUILDER_USER`] with the builder key as
//! password may push and pull every repository (the builder pushes the images it builds).

use std::collections::HashMap;

use headers::HeaderMapExt as _;
use headers::authorization::{Authorization, Basic};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::{Error, Result};

/// The fixed user name of the builder's platform credential (its password is the builder key).
pub const BUILDER_USER: &str = "workflow-builder";

/// What a request wants to do with a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read.
    Pull,
    /// Write or delete.
    Push,
}

impl Action {
    /// The wire name (`pull` / `push`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
        }
    }
}

/// The answer to an access check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allowed,
    /// The credentials are not valid at all.
    BadCredentials(String),
    /// Valid credentials, not allowed on this repository.
    Denied(String),
}

/// Answers whether `username`/`token` may do `action` on repository `app`. An empty `app`
/// asks only whether the credentials are valid (the `/v2/` login check).
#[async_trait::async_trait]
pub trait AccessCheck: Send + Sync + std::fmt::Debug {
    /// Checks one request.
    async fn check(
        &self,
        username: &str,
        token: &str,
        app: &str,
        action: Action,
    ) -> Result<Decision>;
}

/// The real check: the controller's `Hooks.CheckAccess` over gRPC.
#[derive(Debug)]
pub struct ControllerAccess {
    hooks: workflow_clients::controller::ControllerHooks,
}

impl ControllerAccess {
    /// A checker calling the controller at `url` (e.g. `http://127.0.0.1:8001`), authenticated
    /// with the platform credential.
    pub fn new(url: &str, credential: &workflow_clients::PlatformCredential) -> Result<Self> {
        let hooks = workflow_clients::controller::ControllerHooks::new(url, credential)
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(ControllerAccess { hooks })
    }
}

#[async_trait::async_trait]
impl AccessCheck for ControllerAccess {
    async fn check(
        &self,
        username: &str,
        token: &str,
        app: &str,
        action: Action,
    ) -> Result<Decision> {
        use workflow_clients::Kind;
        use workflow_clients::controller::Access;
        use workflow_proto::status::HasKind;
        match self
            .hooks
            .check_access(username, token, app, action.as_str())
            .await
        {
            Ok(Access::Allowed) => Ok(Decision::Allowed),
            Ok(Access::Denied(reason)) => Ok(Decision::Denied(reason)),
            Err(e) => match e.kind() {
                Kind::Unauthenticated => Ok(Decision::BadCredentials(e.message().to_string())),
                Kind::Denied | Kind::NotFound => Ok(Decision::Denied(e.message().to_string())),
                _ => Err(Error::AccessCheck(format!(
                    "controller check_access for {username:?} on {app:?}: {}",
                    e.message()
                ))),
            },
        }
    }
}

/// In-memory users for tests: username -> (token, apps pullable, apps pushable).
#[derive(Debug, Default)]
pub struct StaticAccess {
    users: HashMap<String, (String, Vec<String>, Vec<String>)>,
}

impl StaticAccess {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user who may pull `pull` apps and push (and pull) `push` apps; `*` means all.
    pub fn user(mut self, name: &str, token: &str, pull: &[&str], push: &[&str]) -> Self {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        self.users
            .insert(name.to_string(), (token.to_string(), v(pull), v(push)));
        self
    }
}

#[async_trait::async_trait]
impl AccessCheck for StaticAccess {
    async fn check(
        &self,
        username: &str,
        token: &str,
        app: &str,
        action: Action,
    ) -> Result<Decision> {
        let Some((t, pull, push)) = self.users.get(username) else {
            return Ok(Decision::BadCredentials(format!(
                "unknown user {username:?}"
            )));
        };
        if !constant_eq(t, token) {
            return Ok(Decision::BadCredentials(format!(
                "bad token for {username:?}"
            )));
        }
        if app.is_empty() {
            return Ok(Decision::Allowed);
        }
        let has = |l: &Vec<String>| l.iter().any(|a| a == "*" || a == app);
        let ok = match action {
            Action::Pull => has(pull) || has(push),
            Action::Push => has(push),
        };
        Ok(if ok {
            Decision::Allowed
        } else {
            Decision::Denied(format!("{username:?} may not {} {app:?}", action.as_str()))
        })
    }
}

/// The registry's gatekeeper: node credential and checker. Every request asks the checker:
/// answers are not cached, so a removed collaborator or a regenerated token is refused at
/// once (issue 10; the cost is one local gRPC round trip per request, see the registry bench).
#[derive(Debug)]
pub struct Authenticator {
    check: Option<Box<dyn AccessCheck>>,
    node: Option<(String, String)>,
    builder_key: Option<String>,
}

/// Parsed `Authorization: Basic` credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// API token (the password).
    pub password: String,
}

/// The credentials of a request's `Authorization: Basic` header; `None` unless it is
/// well-formed Basic with a non-empty user name.
pub fn basic_credentials(headers: &http::HeaderMap) -> Option<Credentials> {
    let Authorization(basic) = headers.typed_get::<Authorization<Basic>>()?;
    (!basic.username().is_empty()).then(|| Credentials {
        username: basic.username().to_string(),
        password: basic.password().to_string(),
    })
}

/// Parses an `Authorization` header value; `None` unless it is well-formed Basic.
pub fn parse_basic(header: &str) -> Option<Credentials> {
    let value = http::HeaderValue::from_str(header.trim()).ok()?;
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    basic_credentials(&headers)
}

/// Compares secrets in constant time; hashing first hides their lengths too.
fn constant_eq(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

impl Authenticator {
    /// With `check` None the registry is open (embedded single-user mode).
    pub fn new(check: Option<Box<dyn AccessCheck>>, node: Option<(String, String)>) -> Self {
        Authenticator {
            check,
            node,
            builder_key: None,
        }
    }

    /// Also accepts [`BUILDER_USER`] with `key` (push and pull everywhere); an empty key
    /// accepts nothing. It does not turn authentication on: an open registry stays open.
    pub fn with_builder_key(mut self, key: &str) -> Self {
        self.builder_key = (!key.is_empty()).then(|| key.to_string());
        self
    }

    /// Whether requests need credentials at all.
    pub fn enabled(&self) -> bool {
        self.check.is_some() || self.node.is_some()
    }

    /// Authorizes `action` on `repo` ("" = just validate credentials) for the request's
    /// credentials. `Unauthorized` asks the client to authenticate; `Denied` is final.
    pub async fn authorize(
        &self,
        creds: Option<&Credentials>,
        repo: &str,
        action: Action,
    ) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let Some(c) = creds else {
            return Err(Error::Unauthorized(format!(
                "credentials needed to {} {repo:?}",
                action.as_str()
            )));
        };
        if let Some((u, p)) = &self.node
            && c.username == *u
        {
            if !constant_eq(&c.password, p) {
                return Err(Error::Unauthorized(format!("bad password for {u:?}")));
            }
            return match action {
                Action::Pull => Ok(()),
                Action::Push => Err(Error::Denied(format!(
                    "node credential {u:?} is read-only, cannot push {repo:?}"
                ))),
            };
        }
        if c.username == BUILDER_USER {
            // The name is reserved: a controller account called that is never consulted, so
            // registering it gains nothing; only the builder key opens it.
            return match &self.builder_key {
                Some(k) if constant_eq(&c.password, k) => Ok(()),
                _ => Err(Error::Unauthorized(format!(
                    "bad builder credential for {BUILDER_USER:?}"
                ))),
            };
        }
        let Some(check) = &self.check else {
            return Err(Error::Unauthorized(format!(
                "unknown user {:?}",
                c.username
            )));
        };
        match check.check(&c.username, &c.password, repo, action).await? {
            Decision::Allowed => Ok(()),
            Decision::BadCredentials(r) => Err(Error::Unauthorized(r)),
            Decision::Denied(r) => Err(Error::Denied(if r.is_empty() {
                format!("{:?} may not {} {repo:?}", c.username, action.as_str())
            } else {
                r
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine as _;

    fn basic(u: &str, p: &str) -> Credentials {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        );
        parse_basic(&h).unwrap()
    }

    /// A checker whose answer the test changes, as a perms or token change does.
    #[derive(Debug, Default)]
    struct Revocable(std::sync::atomic::AtomicBool);

    #[async_trait::async_trait]
    impl AccessCheck for Revocable {
        async fn check(&self, _: &str, _: &str, _: &str, _: Action) -> Result<Decision> {
            Ok(if self.0.load(std::sync::atomic::Ordering::SeqCst) {
                Decision::Denied("collaborator removed".into())
            } else {
                Decision::Allowed
            })
        }
    }

    /// Guards issue 10: a revoked right is refused on the very next request (no cached allow).
    #[tokio::test]
    async fn revocation_takes_effect_at_once() {
        let check = std::sync::Arc::new(Revocable::default());
        #[derive(Debug)]
        struct Shared(std::sync::Arc<Revocable>);
        #[async_trait::async_trait]
        impl AccessCheck for Shared {
            async fn check(&self, u: &str, t: &str, a: &str, act: Action) -> Result<Decision> {
                self.0.check(u, t, a, act).await
            }
        }
        let auth = Authenticator::new(Some(Box::new(Shared(check.clone()))), None);
        let c = basic("bob", "tok");
        auth.authorize(Some(&c), "api", Action::Pull).await.unwrap();
        check.0.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = auth
            .authorize(Some(&c), "api", Action::Pull)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Denied(_)), "{e:?}");
    }

    #[test]
    fn parses_basic_headers() {
        assert_eq!(basic("alice", "t:ok").password, "t:ok");
        for bad in ["", "Basic", "Bearer abc", "Basic !!!", "Basic Og=="] {
            assert!(parse_basic(bad).is_none(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn node_is_read_only_and_users_need_rights() {
        let auth = Authenticator::new(
            Some(Box::new(StaticAccess::new().user(
                "alice",
                "tok",
                &[],
                &["api"],
            ))),
            Some(("node".into(), "np".into())),
        );
        auth.authorize(Some(&basic("node", "np")), "api", Action::Pull)
            .await
            .unwrap();
        assert!(matches!(
            auth.authorize(Some(&basic("node", "np")), "api", Action::Push)
                .await,
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            auth.authorize(Some(&basic("node", "x")), "api", Action::Pull)
                .await,
            Err(Error::Unauthorized(_))
        ));
        auth.authorize(Some(&basic("alice", "tok")), "api", Action::Push)
            .await
            .unwrap();
        auth.authorize(Some(&basic("alice", "tok")), "", Action::Pull)
            .await
            .unwrap();
        assert!(matches!(
            auth.authorize(Some(&basic("alice", "tok")), "web", Action::Pull)
                .await,
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            auth.authorize(Some(&basic("alice", "bad")), "api", Action::Pull)
                .await,
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            auth.authorize(None, "api", Action::Pull).await,
            Err(Error::Unauthorized(_))
        ));
        let open = Authenticator::new(None, None);
        open.authorize(None, "api", Action::Push).await.unwrap();
    }

    #[tokio::test]
    async fn builder_key_pushes_everywhere_and_nothing_else() {
        let auth = Authenticator::new(
            Some(Box::new(StaticAccess::new().user("alice", "tok", &[], &[]))),
            None,
        )
        .with_builder_key("bk");
        for repo in ["api", "web", ""] {
            for action in [Action::Pull, Action::Push] {
                auth.authorize(Some(&basic(BUILDER_USER, "bk")), repo, action)
                    .await
                    .unwrap();
            }
        }
        let e = auth
            .authorize(Some(&basic(BUILDER_USER, "nope")), "api", Action::Push)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unauthorized(_)), "{e}");
        assert!(e.to_string().contains(BUILDER_USER), "{e}");
        // Without a configured key the builder user is refused, whatever it sends.
        let none = Authenticator::new(
            Some(Box::new(StaticAccess::new().user(
                BUILDER_USER,
                "",
                &["*"],
                &["*"],
            ))),
            None,
        )
        .with_builder_key("");
        assert!(matches!(
            none.authorize(Some(&basic(BUILDER_USER, "")), "api", Action::Pull)
                .await,
            Err(Error::Unauthorized(_))
        ));
        // The key is no user's password.
        assert!(matches!(
            auth.authorize(Some(&basic("alice", "bk")), "api", Action::Pull)
                .await,
            Err(Error::Unauthorized(_))
        ));
    }
}
