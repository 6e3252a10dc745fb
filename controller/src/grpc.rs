//! The controller's gRPC API: converts messages, calls [`Controller`], maps errors.
//! No logic lives here.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use workflow_proto::controller::v1 as pb;

/// Path prefix of the hooks service, which needs the platform credential.
pub const HOOKS_PATH: &str = "/workflow.controller.v1.Hooks/";

use crate::domain::{
    BuildOutcome, ConfigPatch, Controller, NewBuild, RegisterRequest, RegistryAction,
};
use crate::model::{self, PageRequest, User};

/// All controller gRPC services share one handle on the domain.
#[derive(Clone)]
pub struct Grpc {
    ctl: Arc<Controller>,
}

impl Grpc {
    /// The adapter over `ctl`.
    pub fn new(ctl: Arc<Controller>) -> Self {
        Grpc { ctl }
    }

    async fn caller<T>(&self, req: &Request<T>) -> Result<User, Status> {
        let token = token_of(req)?.ok_or_else(|| {
            Status::unauthenticated("missing `authorization: token <token>` metadata")
        })?;
        Ok(self.ctl.authenticate(&token).await?)
    }

    async fn maybe_caller<T>(&self, req: &Request<T>) -> Result<Option<User>, Status> {
        match token_of(req)? {
            Some(t) => Ok(Some(self.ctl.authenticate(&t).await?)),
            None => Ok(None),
        }
    }

    fn builder<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let m = req.metadata();
        let key = m
            .get(workflow_common::grpc::CREDENTIAL_HEADER)
            .or_else(|| m.get(workflow_common::grpc::LEGACY_CREDENTIAL_HEADER))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Ok(self.ctl.check_builder_key(key)?)
    }
}

fn token_of<T>(req: &Request<T>) -> Result<Option<String>, Status> {
    let Some(v) = req.metadata().get("authorization") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| Status::unauthenticated("invalid authorization metadata"))?;
    Ok(Some(
        crate::domain::token_from_authorization(v)?.to_string(),
    ))
}

fn page(p: Option<pb::PageRequest>) -> PageRequest {
    p.map_or_else(PageRequest::default, |p| {
        PageRequest::new(p.limit, p.offset)
    })
}

fn user(u: User) -> pb::User {
    pb::User {
        id: u.id,
        username: u.username,
        email: u.email,
        first_name: u.first_name,
        last_name: u.last_name,
        is_superuser: u.is_superuser,
        is_staff: u.is_staff,
        is_active: u.is_active,
        date_joined: u.date_joined,
        last_login: u.last_login.unwrap_or_default(),
    }
}

fn key(k: model::Key) -> pb::Key {
    pb::Key {
        uuid: k.uuid,
        id: k.id,
        owner: k.owner,
        public: k.public,
        fingerprint: k.fingerprint,
        created: k.created,
        updated: k.updated,
    }
}

fn app(a: model::App) -> pb::App {
    pb::App {
        uuid: a.uuid,
        id: a.id,
        owner: a.owner,
        structure: a.structure.into_iter().collect(),
        created: a.created,
        updated: a.updated,
    }
}

/// The domain decides what a config shows (users see the registry password masked).
fn config(c: model::Config) -> pb::Config {
    pb::Config {
        uuid: c.uuid,
        app: c.app,
        owner: c.owner,
        values: c.values.into_iter().collect(),
        memory: c.memory.into_iter().collect(),
        cpu: c.cpu.into_iter().collect(),
        tags: c.tags.into_iter().collect(),
        registry: c.registry.into_iter().collect(),
        created: c.created,
        updated: c.updated,
    }
}

fn build(b: model::Build) -> pb::Build {
    pb::Build {
        uuid: b.uuid,
        app: b.app,
        owner: b.owner,
        image: b.image,
        sha: b.sha,
        procfile: b.procfile.into_iter().collect(),
        dockerfile: b.dockerfile,
        created: b.created,
        updated: b.updated,
        kind: match b.kind.as_str() {
            "image" => pb::BuildKind::Image,
            "buildpack" => pb::BuildKind::Buildpack,
            "dockerfile" => pb::BuildKind::Dockerfile,
            _ => pb::BuildKind::Unspecified,
        } as i32,
        digest: b.digest,
        state: b.state,
        error: b.error,
    }
}

fn release(r: model::Release, image: String) -> pb::Release {
    pb::Release {
        uuid: r.uuid,
        app: r.app,
        version: r.version,
        owner: r.owner,
        build: r.build.unwrap_or_default(),
        config: r.config,
        summary: r.summary,
        failed: r.failed,
        exception: r.exception,
        created: r.created,
        updated: r.updated,
        image,
        state: r.state,
    }
}

fn build_change(b: model::Build, r: model::Release) -> pb::BuildChange {
    let image = b.image.clone();
    pb::BuildChange {
        build: Some(build(b)),
        release: Some(release(r, image)),
        unchanged: false,
    }
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::auth_server::Auth for Grpc {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> R<pb::User> {
        let caller = self.maybe_caller(&req).await?;
        let r = req.into_inner();
        let u = self
            .ctl
            .register(
                caller.as_ref(),
                RegisterRequest {
                    username: r.username,
                    password: r.password,
                    email: r.email,
                    first_name: r.first_name,
                    last_name: r.last_name,
                },
            )
            .await?;
        Ok(Response::new(user(u)))
    }
    async fn login(&self, req: Request<pb::LoginRequest>) -> R<pb::TokenResponse> {
        let r = req.into_inner();
        Ok(Response::new(pb::TokenResponse {
            token: self.ctl.login(&r.username, &r.password).await?,
        }))
    }
    async fn whoami(&self, req: Request<pb::Empty>) -> R<pb::User> {
        Ok(Response::new(user(self.caller(&req).await?)))
    }
    async fn regenerate_token(
        &self,
        req: Request<pb::RegenerateTokenRequest>,
    ) -> R<pb::TokenResponse> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let name = (!r.username.is_empty()).then_some(r.username.as_str());
        let token = self.ctl.regenerate_token(&u, name, r.all).await?;
        Ok(Response::new(pb::TokenResponse {
            token: token.unwrap_or_default(),
        }))
    }
    async fn cancel(&self, req: Request<pb::CancelRequest>) -> R<pb::Empty> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        self.ctl
            .cancel(&u, (!r.username.is_empty()).then_some(r.username.as_str()))
            .await?;
        Ok(Response::new(pb::Empty {}))
    }
    async fn passwd(&self, req: Request<pb::PasswdRequest>) -> R<pb::Empty> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        self.ctl
            .passwd(
                &u,
                (!r.username.is_empty()).then_some(r.username.as_str()),
                &r.password,
                &r.new_password,
            )
            .await?;
        Ok(Response::new(pb::Empty {}))
    }
}

#[tonic::async_trait]
impl pb::keys_server::Keys for Grpc {
    async fn list(&self, req: Request<pb::PageRequest>) -> R<pb::KeyList> {
        let u = self.caller(&req).await?;
        let p = self.ctl.list_keys(&u, page(Some(req.into_inner()))).await?;
        Ok(Response::new(pb::KeyList {
            count: p.count,
            results: p.results.into_iter().map(key).collect(),
        }))
    }
    async fn add(&self, req: Request<pb::AddKeyRequest>) -> R<pb::Key> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        Ok(Response::new(key(self
            .ctl
            .add_key(&u, &r.id, &r.public)
            .await?)))
    }
    async fn remove(&self, req: Request<pb::KeyRef>) -> R<pb::Empty> {
        let u = self.caller(&req).await?;
        self.ctl.remove_key(&u, &req.into_inner().id).await?;
        Ok(Response::new(pb::Empty {}))
    }
}

#[tonic::async_trait]
impl pb::apps_server::Apps for Grpc {
    async fn create(&self, req: Request<pb::CreateAppRequest>) -> R<pb::App> {
        let u = self.caller(&req).await?;
        let id = req.into_inner().id;
        Ok(Response::new(app(self
            .ctl
            .create_app(&u, Some(id.as_str()))
            .await?)))
    }
    async fn list(&self, req: Request<pb::ListAppsRequest>) -> R<pb::AppList> {
        let u = self.caller(&req).await?;
        let p = self.ctl.list_apps(&u, page(req.into_inner().page)).await?;
        Ok(Response::new(pb::AppList {
            count: p.count,
            results: p.results.into_iter().map(app).collect(),
        }))
    }
    async fn get(&self, req: Request<pb::AppRef>) -> R<pb::App> {
        let u = self.caller(&req).await?;
        Ok(Response::new(app(self
            .ctl
            .get_app(&u, &req.into_inner().app)
            .await?)))
    }
    async fn transfer(&self, req: Request<pb::TransferAppRequest>) -> R<pb::App> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        Ok(Response::new(app(self
            .ctl
            .transfer_app(&u, &r.app, &r.owner)
            .await?)))
    }
    async fn destroy(&self, req: Request<pb::AppRef>) -> R<pb::Empty> {
        let u = self.caller(&req).await?;
        self.ctl.destroy_app(&u, &req.into_inner().app).await?;
        Ok(Response::new(pb::Empty {}))
    }
}

fn change(c: crate::domain::ConfigChange) -> pb::ConfigChange {
    pb::ConfigChange {
        config: Some(config(c.config)),
        release: Some(release(c.release, String::new())),
    }
}

#[tonic::async_trait]
impl pb::config_service_server::ConfigService for Grpc {
    async fn get(&self, req: Request<pb::AppRef>) -> R<pb::Config> {
        let u = self.caller(&req).await?;
        Ok(Response::new(config(
            self.ctl.get_config(&u, &req.into_inner().app).await?,
        )))
    }
    async fn set(&self, req: Request<pb::SetConfigRequest>) -> R<pb::ConfigChange> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let patch = ConfigPatch::values(r.values.into_iter().map(|(k, v)| (k, Some(v))).collect());
        Ok(Response::new(change(
            self.ctl.set_config(&u, &r.app, patch).await?,
        )))
    }
    async fn unset(&self, req: Request<pb::UnsetConfigRequest>) -> R<pb::ConfigChange> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let patch = ConfigPatch::values(r.keys.into_iter().map(|k| (k, None)).collect());
        Ok(Response::new(change(
            self.ctl.set_config(&u, &r.app, patch).await?,
        )))
    }
}

#[tonic::async_trait]
impl pb::builds_server::Builds for Grpc {
    async fn list(&self, req: Request<pb::ListForAppRequest>) -> R<pb::BuildList> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let p = self.ctl.list_builds(&u, &r.app, page(r.page)).await?;
        Ok(Response::new(pb::BuildList {
            count: p.count,
            results: p.results.into_iter().map(build).collect(),
        }))
    }
    async fn create(&self, req: Request<pb::CreateBuildRequest>) -> R<pb::BuildChange> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let build = NewBuild {
            image: r.image,
            procfile: r.procfile.into_iter().collect(),
            ..Default::default()
        };
        // Same path as REST: imported through registry-sync when one is configured.
        let (b, rel) = self
            .ctl
            .build_from_image(&u, &r.app, build, &mut |_| {})
            .await?;
        Ok(Response::new(build_change(b, rel)))
    }
}

#[tonic::async_trait]
impl pb::releases_server::Releases for Grpc {
    async fn list(&self, req: Request<pb::ListForAppRequest>) -> R<pb::ReleaseList> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let p = self.ctl.list_releases(&u, &r.app, page(r.page)).await?;
        Ok(Response::new(pb::ReleaseList {
            count: p.count,
            results: p
                .results
                .into_iter()
                .map(|r| release(r, String::new()))
                .collect(),
        }))
    }
    async fn get(&self, req: Request<pb::ReleaseRef>) -> R<pb::Release> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        Ok(Response::new(release(
            self.ctl.get_release(&u, &r.app, r.version).await?,
            String::new(),
        )))
    }
    async fn rollback(&self, req: Request<pb::RollbackRequest>) -> R<pb::Release> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let v = (r.version != 0).then_some(r.version);
        Ok(Response::new(release(
            self.ctl.rollback(&u, &r.app, v).await?,
            String::new(),
        )))
    }
}

#[tonic::async_trait]
impl pb::formation_server::Formation for Grpc {
    async fn scale(&self, req: Request<pb::ScaleRequest>) -> R<pb::App> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        self.ctl
            .scale(&u, &r.app, r.structure.into_iter().collect())
            .await?;
        Ok(Response::new(app(self.ctl.get_app(&u, &r.app).await?)))
    }
    async fn list_processes(&self, req: Request<pb::ListProcessesRequest>) -> R<pb::ProcessList> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let kind = (!r.r#type.is_empty()).then_some(r.r#type.as_str());
        let procs = self.ctl.processes(&u, &r.app, kind).await?;
        Ok(Response::new(pb::ProcessList {
            count: procs.len() as u64,
            results: procs
                .into_iter()
                .map(|p| pb::Process {
                    name: p.name,
                    r#type: p.kind,
                    release: p.release,
                    state: p.state,
                    started: p.started,
                })
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl pb::perms_server::Perms for Grpc {
    async fn list(&self, req: Request<pb::AppRef>) -> R<pb::UserList> {
        let u = self.caller(&req).await?;
        Ok(Response::new(pb::UserList {
            users: self.ctl.list_perms(&u, &req.into_inner().app).await?,
        }))
    }
    async fn grant(&self, req: Request<pb::PermRequest>) -> R<pb::Empty> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        if r.app.is_empty() {
            self.ctl.set_admin(&u, &r.username, true).await?;
        } else {
            self.ctl.grant_perm(&u, &r.app, &r.username).await?;
        }
        Ok(Response::new(pb::Empty {}))
    }
    async fn revoke(&self, req: Request<pb::PermRequest>) -> R<pb::Empty> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        if r.app.is_empty() {
            self.ctl.set_admin(&u, &r.username, false).await?;
        } else {
            self.ctl.revoke_perm(&u, &r.app, &r.username).await?;
        }
        Ok(Response::new(pb::Empty {}))
    }
    async fn list_admins(&self, req: Request<pb::Empty>) -> R<pb::UserList> {
        let u = self.caller(&req).await?;
        let p = self
            .ctl
            .list_admins(&u, PageRequest::new(PageRequest::MAX_LIMIT, 0))
            .await?;
        Ok(Response::new(pb::UserList { users: p.results }))
    }
}

#[tonic::async_trait]
impl pb::hooks_server::Hooks for Grpc {
    async fn user_from_key(&self, req: Request<pb::KeyFingerprint>) -> R<pb::UserApps> {
        self.builder(&req)?;
        let ua = self
            .ctl
            .user_from_key(&req.into_inner().fingerprint)
            .await?;
        Ok(Response::new(pb::UserApps {
            username: ua.username,
            apps: ua.apps,
            app_uuids: ua.app_uuids.into_iter().collect(),
        }))
    }
    async fn app_config(&self, req: Request<pb::HookConfigRequest>) -> R<pb::Config> {
        self.builder(&req)?;
        let r = req.into_inner();
        Ok(Response::new(config(
            self.ctl.hook_config(&r.username, &r.app).await?,
        )))
    }
    async fn create_build(&self, req: Request<pb::HookBuildRequest>) -> R<pb::BuildChange> {
        self.builder(&req)?;
        let r = req.into_inner();
        let kind = match pb::BuildKind::try_from(r.kind) {
            Ok(pb::BuildKind::Image) => Some(model::BuildKind::Image),
            Ok(pb::BuildKind::Buildpack) => Some(model::BuildKind::Buildpack),
            Ok(pb::BuildKind::Dockerfile) => Some(model::BuildKind::Dockerfile),
            Ok(pb::BuildKind::Unspecified) => None,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "build kind {}: expected image, buildpack or dockerfile",
                    r.kind
                )));
            }
        };
        let dockerfile = r.dockerfile || kind == Some(model::BuildKind::Dockerfile);
        let port =
            match r.port {
                0 => None,
                p => Some(u16::try_from(p).map_err(|_| {
                    Status::invalid_argument(format!("port {p}: expected 1 to 65535"))
                })?),
            };
        let failure = (!r.failure.is_empty()).then_some(r.failure);
        let outcome = self
            .ctl
            .hook_build(
                &r.username,
                &r.app,
                NewBuild {
                    image: r.image,
                    procfile: r.procfile.into_iter().collect(),
                    sha: r.sha,
                    dockerfile: if dockerfile {
                        "true".into()
                    } else {
                        String::new()
                    },
                    port,
                    kind,
                    digest: r.digest,
                    log: r.log,
                },
                failure,
            )
            .await?;
        Ok(Response::new(match outcome {
            BuildOutcome::Released(done) => build_change(done.0, done.1),
            BuildOutcome::Unchanged(rel) => pb::BuildChange {
                build: None,
                release: Some(release(rel, String::new())),
                unchanged: true,
            },
            BuildOutcome::Failed(b) => pb::BuildChange {
                build: Some(build(b)),
                release: None,
                unchanged: false,
            },
        }))
    }
    async fn wait_release(&self, req: Request<pb::WaitReleaseRequest>) -> R<pb::Release> {
        self.builder(&req)?;
        let r = req.into_inner();
        let rel = self
            .ctl
            .hook_wait_release(
                &r.username,
                &r.app,
                r.version,
                std::time::Duration::from_millis(r.timeout_ms),
            )
            .await?;
        Ok(Response::new(release(rel, String::new())))
    }
    async fn check_access(
        &self,
        req: Request<pb::CheckAccessRequest>,
    ) -> R<pb::CheckAccessResponse> {
        self.builder(&req)?;
        let r = req.into_inner();
        let action = match r.action.as_str() {
            "pull" => RegistryAction::Pull,
            "push" => RegistryAction::Push,
            other => {
                return Err(Status::invalid_argument(format!(
                    "action {other:?}: expected pull or push"
                )));
            }
        };
        let outcome = self
            .ctl
            .check_registry_access(&r.username, &r.token, &r.app, action)
            .await;
        Ok(Response::new(match outcome {
            Ok(uuid) => pb::CheckAccessResponse {
                allowed: true,
                reason: String::new(),
                app_uuid: uuid.unwrap_or_default(),
            },
            // A valid user without the right gets allowed = false and the reason.
            Err(e @ (crate::Error::Forbidden(_) | crate::Error::NotFound(_))) => {
                pb::CheckAccessResponse {
                    allowed: false,
                    reason: e.to_string(),
                    app_uuid: String::new(),
                }
            }
            // Bad credentials are an Unauthenticated status (the registry and git answer 401
            // with a challenge so clients ask again); the store failing is not an answer.
            Err(e) => return Err(e.into()),
        }))
    }
}

type LogStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::LogLines, Status>> + Send>>;

#[tonic::async_trait]
impl pb::logs_server::Logs for Grpc {
    async fn tail(&self, req: Request<pb::TailLogsRequest>) -> R<pb::LogLines> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let (lines, _) = self.ctl.logs_tail(&u, &r.app, r.lines).await?;
        Ok(Response::new(pb::LogLines {
            lines,
            next_page: String::new(),
        }))
    }

    type FollowStream = LogStream;

    async fn follow(&self, req: Request<pb::FollowLogsRequest>) -> R<LogStream> {
        use futures::StreamExt;
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let (lines, stream) = self.ctl.logs_follow(&u, &r.app, r.lines).await?;
        let head = futures::stream::iter([Ok(pb::LogLines {
            lines,
            next_page: String::new(),
        })]);
        let rest = stream.map(|l| {
            l.map(|line| pb::LogLines {
                lines: vec![line],
                next_page: String::new(),
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(head.chain(rest))))
    }

    async fn search(&self, req: Request<pb::SearchLogsRequest>) -> R<pb::LogLines> {
        let u = self.caller(&req).await?;
        let r = req.into_inner();
        let some = |s: String| (!s.is_empty()).then_some(s);
        let q = crate::logs::LogQuery {
            query: r.query,
            since: some(r.since),
            until: some(r.until),
            process_type: some(r.r#type),
            limit: r.limit,
            page: some(r.page),
        };
        let (lines, next) = self.ctl.logs_search(&u, &r.app, q).await?;
        Ok(Response::new(pb::LogLines {
            lines,
            next_page: next.unwrap_or_default(),
        }))
    }
}

/// Adds every controller service to `routes` and marks them serving.
pub async fn add_services(
    routes: tonic::service::Routes,
    health: &tonic_health::server::HealthReporter,
    grpc: Grpc,
) -> tonic::service::Routes {
    use pb::*;
    health.set_serving::<auth_server::AuthServer<Grpc>>().await;
    health.set_serving::<apps_server::AppsServer<Grpc>>().await;
    routes
        .add_service(auth_server::AuthServer::new(grpc.clone()))
        .add_service(keys_server::KeysServer::new(grpc.clone()))
        .add_service(apps_server::AppsServer::new(grpc.clone()))
        .add_service(config_service_server::ConfigServiceServer::new(
            grpc.clone(),
        ))
        .add_service(builds_server::BuildsServer::new(grpc.clone()))
        .add_service(releases_server::ReleasesServer::new(grpc.clone()))
        .add_service(formation_server::FormationServer::new(grpc.clone()))
        .add_service(perms_server::PermsServer::new(grpc.clone()))
        .add_service(logs_server::LogsServer::new(grpc.clone()))
        .add_service(hooks_server::HooksServer::new(grpc))
}
