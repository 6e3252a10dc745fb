//! Apps and who may use them (owner, collaborators, administrators).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;

use super::Controller;
use super::rows::{self, APP_ACCESS_SELECT, APP_SELECT, AppRow};
use crate::error::{Error, Result};
use crate::model::{App, ConfigBody, Page, PageRequest, User, now};
use crate::store::{Conn, StoreError};
use crate::validate;

/// What an operation needs of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Owner, collaborator or admin: everything but the below.
    Use,
    /// Owner or admin: destroy, transfer, sharing.
    Own,
}

/// Loads an app and checks that `user` may act on it.
pub(crate) fn app_for(c: &mut dyn Conn, user: &User, name: &str, access: Access) -> Result<AppRow> {
    let sql = format!("{APP_ACCESS_SELECT} WHERE a.name = $1");
    let row = c
        .query_opt(&sql, &[name.into(), user.id.into()])?
        .ok_or_else(|| not_found(name))?;
    let found = rows::app(&row)?;
    let collaborator = row.bool(7);
    let owner = found.owner_id == user.id;
    let allowed = user.is_superuser || owner || (access == Access::Use && collaborator);
    if !allowed {
        return Err(Error::Forbidden(match access {
            Access::Use => format!(
                "you do not have permission to use app {name:?}: ask its owner to run `deis perms:create {} -a {name}`",
                user.username
            ),
            Access::Own => format!(
                "only the owner of {name:?} ({}) or an administrator can do this",
                found.app.owner
            ),
        }));
    }
    Ok(found)
}

pub(crate) fn not_found(name: &str) -> Error {
    Error::NotFound(format!("app {name:?} not found (see deis apps)"))
}

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brisk", "calm", "clever", "crisp", "dapper", "eager", "fancy", "gentle",
    "golden", "happy", "hidden", "jolly", "keen", "lively", "lucky", "mellow", "nimble", "quiet",
    "rapid", "rustic", "sunny", "swift", "tidy", "vivid", "witty", "zesty",
];
const NOUNS: &[&str] = &[
    "anchor", "badger", "beacon", "cactus", "comet", "dolphin", "ember", "falcon", "garden",
    "harbor", "island", "jasmine", "kettle", "lantern", "meadow", "nebula", "orchid", "pepper",
    "quartz", "river", "saddle", "tundra", "umbrella", "valley", "walrus", "yonder", "zephyr",
];

/// A random `adjective-noun` name, Deis style.
fn random_name() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{}-{}",
        ADJECTIVES.choose(&mut rng).unwrap_or(&"new"),
        NOUNS.choose(&mut rng).unwrap_or(&"app")
    )
}

impl Controller {
    /// Creates an app (random name if `name` is empty) with its initial release v1.
    pub async fn create_app(&self, caller: &User, name: Option<&str>) -> Result<App> {
        // Absent or empty asks for a random name; only blanks is a mistake worth naming.
        if let Some(n) = name
            && !n.is_empty()
            && n.trim().is_empty()
        {
            return Err(Error::invalid("id", n, validate::APP_NAME_MSG));
        }
        let explicit = name.map(str::trim).filter(|n| !n.is_empty());
        if let Some(n) = explicit {
            validate::app_name(n)?;
        }
        let caller = caller.clone();
        let explicit = explicit.map(str::to_string);
        let app = self
            .store
            .write(move |c| {
                let name = match explicit {
                    Some(n) => n,
                    None => {
                        let mut pick = None;
                        for _ in 0..20 {
                            let n = random_name();
                            if rows::count(c, "SELECT COUNT(*) FROM apps WHERE name = $1", &[n.as_str().into()])? == 0 {
                                pick = Some(n);
                                break;
                            }
                        }
                        pick.ok_or_else(|| Error::Conflict("could not find a free random app name; pass one".into()))?
                    }
                };
                let t = now();
                let uuid = uuid::Uuid::new_v4().to_string();
                let r = c.execute(
                    "INSERT INTO apps (uuid, name, owner_id, structure, created, updated) VALUES ($1, $2, $3, '{}', $4, $5)",
                    &[uuid.as_str().into(), name.as_str().into(), caller.id.into(), t.as_str().into(), t.as_str().into()],
                );
                if let Err(StoreError::Unique(_)) = r {
                    return Err(Error::invalid("id", &name, "Application with this id already exists."));
                }
                r?;
                let config_uuid =
                    super::releases::insert_config(c, &uuid, &caller.username, &ConfigBody::default())?.uuid;
                c.execute(
                    "INSERT INTO releases (uuid, app_uuid, version, owner, build_uuid, config_uuid, summary, failed, exception, created, updated, state) VALUES ($1, $2, 1, $3, NULL, $4, $5, 0, '', $6, $7, 'deployed')",
                    &[
                        uuid::Uuid::new_v4().to_string().into(),
                        uuid.as_str().into(),
                        caller.username.as_str().into(),
                        config_uuid.into(),
                        format!("{} created initial release", caller.username).into(),
                        t.as_str().into(),
                        t.as_str().into(),
                    ],
                )?;
                // Deis creates the app's default domain, named after the app, with it.
                c.execute(
                    "INSERT INTO domains (uuid, app_uuid, owner, domain, cert_uuid, created, updated) VALUES ($1, $2, $3, $4, NULL, $5, $6)",
                    &[
                        uuid::Uuid::new_v4().to_string().into(),
                        uuid.as_str().into(),
                        caller.username.as_str().into(),
                        name.as_str().into(),
                        t.as_str().into(),
                        t.as_str().into(),
                    ],
                )?;
                Ok(app_for(c, &caller, &name, Access::Own)?.app)
            })
            .await?;
        self.clear_leftover_images(&app).await?;
        self.notify(&app.uuid);
        Ok(app)
    }

    /// Deletes any registry repository of the new app's name: images a destroyed app of this
    /// name left behind (destroyed before destroy deleted them, or pushed while it was being
    /// destroyed) are never the new app's. The row is inserted first, so nobody else can take
    /// the name meanwhile; if the registry cannot be cleared the app is removed again and the
    /// create fails, saying why.
    async fn clear_leftover_images(&self, app: &App) -> Result<()> {
        let Some(images) = &self.images else {
            return Ok(());
        };
        let Err(e) = images.delete_repository(&app.id).await else {
            return Ok(());
        };
        let uuid = app.uuid.clone();
        if let Err(undo) = self
            .store
            .write(move |c| {
                c.execute("DELETE FROM apps WHERE uuid = $1", &[uuid.into()])?;
                Ok::<_, Error>(())
            })
            .await
        {
            tracing::error!(app = %app.id, error = %undo, "removing an app whose registry could not be cleared");
        }
        Err(Error::Unavailable(format!(
            "creating app {}: the registry could not be cleared of an earlier app of this name ({e}); create it again when registry-sync is back",
            app.id
        )))
    }

    /// Apps the caller may use (all of them for administrators), by name.
    pub async fn list_apps(&self, caller: &User, page: PageRequest) -> Result<Page<App>> {
        let (uid, admin) = (caller.id, caller.is_superuser);
        self.store
            .read(move |c| {
                let visible = "(a.owner_id = $1 OR $2 = 1 OR EXISTS(SELECT 1 FROM perms p WHERE p.app_uuid = a.uuid AND p.user_id = $1))";
                let count = rows::count(
                    c,
                    &format!("SELECT COUNT(*) FROM apps a WHERE {visible}"),
                    &[uid.into(), admin.into()],
                )?;
                let sql = format!("{APP_SELECT} WHERE {visible} ORDER BY a.name LIMIT $3 OFFSET $4");
                let results = c
                    .query(
                        &sql,
                        &[uid.into(), admin.into(), i64::from(page.limit).into(), i64::from(page.offset).into()],
                    )?
                    .iter()
                    .map(|r| rows::app(r).map(|a| a.app))
                    .collect::<Result<_>>()?;
                Ok(Page { count, results })
            })
            .await
    }

    /// One app.
    pub async fn get_app(&self, caller: &User, name: &str) -> Result<App> {
        let (caller, name) = (caller.clone(), name.to_string());
        self.store
            .read(move |c| Ok(app_for(c, &caller, &name, Access::Use)?.app))
            .await
    }

    /// Gives the app to another user (owner or admin).
    pub async fn transfer_app(&self, caller: &User, name: &str, new_owner: &str) -> Result<App> {
        if new_owner.is_empty() {
            return Err(Error::invalid(
                "owner",
                "",
                "nothing to update: give an owner to transfer the app to",
            ));
        }
        let (caller, name, new_owner) = (caller.clone(), name.to_string(), new_owner.to_string());
        self.store
            .write(move |c| {
                let app = app_for(c, &caller, &name, Access::Own)?;
                let to = rows::user_by_name(c, &new_owner)?;
                c.execute(
                    "UPDATE apps SET owner_id = $1, updated = $2 WHERE uuid = $3",
                    &[to.id.into(), now().into(), app.app.uuid.as_str().into()],
                )?;
                // The new owner no longer needs a collaborator entry.
                c.execute(
                    "DELETE FROM perms WHERE app_uuid = $1 AND user_id = $2",
                    &[app.app.uuid.as_str().into(), to.id.into()],
                )?;
                Ok(app_for(c, &to, &name, Access::Own)?.app)
            })
            .await
    }

    /// Stops everything the app runs and deletes it with its whole history.
    pub async fn destroy_app(&self, caller: &User, name: &str) -> Result<()> {
        let lock = self.deploy_lock(name);
        let _held = lock.lock().await;
        let (c1, n1) = (caller.clone(), name.to_string());
        let app = self
            .store
            .read(move |c| app_for(c, &c1, &n1, Access::Own))
            .await?;
        self.runtime
            .destroy(name, &app.app.uuid)
            .await
            .map_err(|e| Error::Deploy(format!("stopping {name}: {e}")))?;
        // Before the row goes: while the name is taken nobody can re-create it and inherit the
        // old images, so a failed cleanup leaves the app in place to be destroyed again.
        if let Some(images) = &self.images {
            images.delete_repository(name).await.map_err(|e| match e {
                Error::Unavailable(m) => Error::Unavailable(format!(
                    "{m}; destroy {name} again when registry-sync is back"
                )),
                other => other,
            })?;
        }
        // Likewise its git repository and build cache (the builder binds repositories to the
        // app's uuid, so a new app of this name never sees them even if this fails).
        if let Some(sources) = &self.sources {
            sources
                .delete_app(name, &app.app.uuid)
                .await
                .map_err(|e| match e {
                    Error::Unavailable(m) => Error::Unavailable(format!(
                        "{m}; destroy {name} again when the builder is back"
                    )),
                    other => other,
                })?;
        }
        // Likewise its logs (reads are also bounded by the app's creation time, so a new app
        // of this name shows none of them even if this fails after a partial delete).
        if let Some(logs) = &self.logs {
            let lines = logs.delete(name).await?;
            tracing::info!(app = name, lines, "app logs deleted");
        }
        let (c2, n2) = (caller.clone(), name.to_string());
        self.store
            .write(move |c| {
                let app = app_for(c, &c2, &n2, Access::Own)?;
                c.execute("DELETE FROM apps WHERE uuid = $1", &[app.app.uuid.into()])?;
                Ok::<_, Error>(())
            })
            .await?;
        // Values only this app used; best effort (a value a concurrent config change reuses
        // makes the delete fail, and the next destroy collects it).
        let collected = self
            .store
            .write(|c| Ok::<_, Error>(crate::store::delete_unused_config_values(c)?))
            .await;
        if let Err(e) = collected {
            tracing::warn!(app = name, error = %e, "collecting unused config values failed");
        }
        self.forget_deploy_lock(name);
        self.unpublish(name);
        Ok(())
    }

    /// Collaborators of an app.
    pub async fn list_perms(&self, caller: &User, app: &str) -> Result<Vec<String>> {
        let (caller, app) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                Ok(c.query(
                    "SELECT u.username FROM perms p JOIN users u ON u.id = p.user_id WHERE p.app_uuid = $1 ORDER BY u.username",
                    &[a.app.uuid.into()],
                )?
                .iter()
                .map(|r| r.text(0))
                .collect())
            })
            .await
    }

    /// Lets `username` use the app (owner or admin).
    pub async fn grant_perm(&self, caller: &User, app: &str, username: &str) -> Result<()> {
        validate::username(username)?;
        let (caller, app, username) = (caller.clone(), app.to_string(), username.to_string());
        self.store
            .write(move |c| {
                let a = app_for(c, &caller, &app, Access::Own)?;
                let user = rows::user_by_name(c, &username)?;
                if user.id == a.owner_id {
                    return Err(Error::invalid(
                        "username",
                        &username,
                        "this user owns the app already",
                    ));
                }
                let r = c.execute(
                    "INSERT INTO perms (app_uuid, user_id) VALUES ($1, $2)",
                    &[a.app.uuid.into(), user.id.into()],
                );
                if let Err(StoreError::Unique(_)) = r {
                    return Err(Error::Conflict(format!(
                        "{username} is already a collaborator on {app}"
                    )));
                }
                r?;
                Ok(())
            })
            .await
    }

    /// Takes `username`'s access away (owner or admin; collaborators may remove themselves).
    pub async fn revoke_perm(&self, caller: &User, app: &str, username: &str) -> Result<()> {
        let (caller, app, username) = (caller.clone(), app.to_string(), username.to_string());
        self.store
            .write(move |c| {
                let need = if caller.username == username {
                    Access::Use
                } else {
                    Access::Own
                };
                let a = app_for(c, &caller, &app, need)?;
                let user = rows::user_by_name(c, &username)?;
                let n = c.execute(
                    "DELETE FROM perms WHERE app_uuid = $1 AND user_id = $2",
                    &[a.app.uuid.into(), user.id.into()],
                )?;
                if n == 0 {
                    return Err(Error::NotFound(format!(
                        "{username} is not a collaborator on {app}"
                    )));
                }
                Ok(())
            })
            .await
    }

    /// Administrators, by name (administrators only).
    pub async fn list_admins(&self, caller: &User, page: PageRequest) -> Result<Page<String>> {
        require_admin(caller)?;
        self.store
            .read(move |c| {
                let count = rows::count(c, "SELECT COUNT(*) FROM users WHERE is_superuser = 1", &[])?;
                let results = c
                    .query(
                        "SELECT username FROM users WHERE is_superuser = 1 ORDER BY username LIMIT $1 OFFSET $2",
                        &[i64::from(page.limit).into(), i64::from(page.offset).into()],
                    )?
                    .iter()
                    .map(|r| r.text(0))
                    .collect();
                Ok(Page { count, results })
            })
            .await
    }

    /// Makes `username` an administrator, or (`admin` false) takes it away.
    pub async fn set_admin(&self, caller: &User, username: &str, admin: bool) -> Result<()> {
        require_admin(caller)?;
        let username = username.to_string();
        self.store
            .write(move |c| {
                let user = rows::user_by_name(c, &username)?;
                if user.is_superuser == admin {
                    return Err(Error::Conflict(format!(
                        "{username} {} an administrator already",
                        if admin { "is" } else { "is not" }
                    )));
                }
                if !admin {
                    let admins =
                        rows::count(c, "SELECT COUNT(*) FROM users WHERE is_superuser = 1", &[])?;
                    if admins <= 1 {
                        return Err(Error::Conflict(format!(
                            "{username} is the last administrator"
                        )));
                    }
                }
                c.execute(
                    "UPDATE users SET is_superuser = $1, is_staff = $2 WHERE id = $3",
                    &[admin.into(), admin.into(), user.id.into()],
                )?;
                Ok(())
            })
            .await
    }

    /// Apps `user` may use (name -> uuid), for the builder's key lookup.
    pub(crate) fn apps_for(c: &mut dyn Conn, user: &User) -> Result<BTreeMap<String, String>> {
        Ok(c.query(
            "SELECT a.name, a.uuid FROM apps a WHERE a.owner_id = $1 OR $2 = 1 OR EXISTS(SELECT 1 FROM perms p WHERE p.app_uuid = a.uuid AND p.user_id = $1) ORDER BY a.name",
            &[user.id.into(), user.is_superuser.into()],
        )?
        .iter()
        .map(|r| (r.text(0), r.text(1)))
        .collect())
    }
}

fn require_admin(caller: &User) -> Result<()> {
    if !caller.is_superuser {
        return Err(Error::Forbidden("only administrators can do this".into()));
    }
    Ok(())
}

/// Structure after a new build: keep counts of types that still exist, start `web`
/// (or `cmd` for images without a Procfile) at 1 when nothing ran yet, others at 0.
pub(crate) fn structure_for_build(
    old: &BTreeMap<String, i64>,
    procfile: &BTreeMap<String, String>,
) -> BTreeMap<String, i64> {
    let nothing_ran = old.values().all(|&n| n == 0);
    let types: Vec<String> = if procfile.is_empty() {
        vec!["cmd".to_string()]
    } else {
        procfile.keys().cloned().collect()
    };
    types
        .into_iter()
        .map(|t| {
            let n = old
                .get(&t)
                .copied()
                .unwrap_or(if nothing_ran && (t == "web" || t == "cmd") {
                    1
                } else {
                    0
                });
            (t, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_defaults() {
        let p = |ts: &[&str]| {
            ts.iter()
                .map(|t| (t.to_string(), format!("run {t}")))
                .collect()
        };
        let s = |kv: &[(&str, i64)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            structure_for_build(&s(&[]), &p(&["web", "worker"])),
            s(&[("web", 1), ("worker", 0)])
        );
        assert_eq!(
            structure_for_build(&s(&[]), &BTreeMap::new()),
            s(&[("cmd", 1)])
        );
        assert_eq!(
            structure_for_build(&s(&[("web", 3), ("old", 2)]), &p(&["web", "worker"])),
            s(&[("web", 3), ("worker", 0)])
        );
    }
}
