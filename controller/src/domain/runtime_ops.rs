//! The Deis endpoints that need a runtime or feed the router: domains, app settings
//! (maintenance, routable, whitelist, label, autoscale), TLS, restarts and one-off runs.
//!
//! Every change is stored and then handed to the reconcile loop ([`Controller::notify`]),
//! which publishes the app's routes; restarts and runs go to the runtime directly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Controller;
use super::apps::{Access, app_for};
use super::desired::desired;
use super::routing::{self, SettingsBody, parse_cidr};
use super::rows::{self, AppRow, RELEASE_SELECT};
use crate::error::{Error, Result};
use crate::model::{Page, PageRequest, Process, User, now};
use crate::runtime::{Restart, RunOutput};
use crate::store::{Conn, StoreError};
use crate::validate;

/// How long `deis run` may take before the process is killed.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A custom domain of an app (Deis's domain object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    /// App name.
    pub app: String,
    /// Who added it.
    pub owner: String,
    /// The host name.
    pub domain: String,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// An app's settings (Deis's `AppSettings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSettings {
    /// Unique id.
    pub uuid: String,
    /// App name.
    pub app: String,
    /// Who last changed them.
    pub owner: String,
    /// Answer with the maintenance page.
    pub maintenance: bool,
    /// Routed at all.
    pub routable: bool,
    /// Client networks allowed (empty: everyone).
    pub whitelist: Vec<String>,
    /// Autoscale rules by process type.
    pub autoscale: BTreeMap<String, serde_json::Value>,
    /// Labels.
    pub label: BTreeMap<String, serde_json::Value>,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// An app's TLS setting (Deis's `TLS` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tls {
    /// Unique id.
    pub uuid: String,
    /// App name.
    pub app: String,
    /// Who last changed it.
    pub owner: String,
    /// Redirect HTTP to HTTPS.
    pub https_enforced: bool,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// A settings change as Deis clients send it: absent fields stay; `null` in `autoscale` or
/// `label` entries removes them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Maintenance mode.
    pub maintenance: Option<bool>,
    /// Routable.
    pub routable: Option<bool>,
    /// Replaces the whitelist.
    pub whitelist: Option<Vec<String>>,
    /// Autoscale rules to set (`null` removes a type's rule).
    pub autoscale: Option<BTreeMap<String, serde_json::Value>>,
    /// Labels to set (`null` removes one).
    pub label: Option<BTreeMap<String, serde_json::Value>>,
}

/// Checks a domain as `deis domains:add` takes it: lowercase DNS labels, an optional
/// leading `*.`, at most 253 characters.
pub fn check_domain(domain: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid("domain", domain, why));
    if domain.is_empty() {
        return bad("a domain is required, e.g. www.example.com");
    }
    if domain.len() > 253 {
        return bad("a domain is at most 253 characters");
    }
    if domain != domain.to_ascii_lowercase() {
        return bad("domains are lowercase");
    }
    let host = domain.strip_prefix("*.").unwrap_or(domain);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return bad("an IP address is not a domain");
    }
    for label in host.split('.') {
        if !validate::is_dns_label(label) {
            return bad(&format!(
                "label {label:?} is not a DNS label (letters, digits and '-', 1-63 characters, not starting or ending with '-')"
            ));
        }
    }
    Ok(())
}

fn domain_row(r: &crate::store::Row) -> Domain {
    Domain {
        app: r.text(0),
        owner: r.text(1),
        domain: r.text(2),
        created: rows::api_time(&r.text(3)),
        updated: rows::api_time(&r.text(4)),
    }
}

const DOMAIN_SELECT: &str = "SELECT a.name, d.owner, d.domain, d.created, d.updated FROM domains d JOIN apps a ON a.uuid = d.app_uuid";

/// Stored settings row metadata: (uuid, owner, created, updated), defaults when never set.
fn settings_meta(c: &mut dyn Conn, app: &AppRow) -> Result<(String, String, String, String)> {
    Ok(
        match c.query_opt(
            "SELECT uuid, owner, created, updated FROM app_settings WHERE app_uuid = $1",
            &[app.app.uuid.as_str().into()],
        )? {
            Some(r) => (
                r.text(0),
                r.text(1),
                rows::api_time(&r.text(2)),
                rows::api_time(&r.text(3)),
            ),
            None => (
                app.app.uuid.clone(),
                app.app.owner.clone(),
                app.app.created.clone(),
                app.app.updated.clone(),
            ),
        },
    )
}

fn settings_of(c: &mut dyn Conn, app: &AppRow) -> Result<AppSettings> {
    let body = routing::settings(c, &app.app.uuid)?;
    let (uuid, owner, created, updated) = settings_meta(c, app)?;
    Ok(AppSettings {
        uuid,
        app: app.app.id.clone(),
        owner,
        maintenance: body.maintenance,
        routable: body.routable,
        whitelist: body.whitelist,
        autoscale: body.autoscale,
        label: body.label,
        created,
        updated,
    })
}

fn tls_of(c: &mut dyn Conn, app: &AppRow) -> Result<Tls> {
    let body = routing::settings(c, &app.app.uuid)?;
    let (uuid, owner, created, updated) = settings_meta(c, app)?;
    Ok(Tls {
        uuid,
        app: app.app.id.clone(),
        owner,
        https_enforced: body.https_enforced,
        created,
        updated,
    })
}

fn save_settings(c: &mut dyn Conn, app: &AppRow, owner: &str, body: &SettingsBody) -> Result<()> {
    let json = serde_json::to_string(body).map_err(|e| Error::Internal(e.to_string()))?;
    let t = now();
    c.execute(
        "INSERT INTO app_settings (app_uuid, uuid, owner, body, created, updated) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (app_uuid) DO UPDATE SET owner = excluded.owner, body = excluded.body, updated = excluded.updated",
        &[
            app.app.uuid.as_str().into(),
            uuid::Uuid::new_v4().to_string().into(),
            owner.into(),
            json.into(),
            t.as_str().into(),
            t.into(),
        ],
    )?;
    Ok(())
}

fn check_whitelist(addresses: &[String]) -> Result<()> {
    for a in addresses {
        parse_cidr(a).map_err(|why| Error::invalid("addresses", a, why))?;
    }
    Ok(())
}

/// Merges a map patch: `null` removes a key (which must exist), anything else sets it.
fn merge(
    field: &'static str,
    target: &mut BTreeMap<String, serde_json::Value>,
    patch: BTreeMap<String, serde_json::Value>,
) -> Result<()> {
    for (k, v) in patch {
        if k.is_empty() || k.len() > 253 {
            return Err(Error::invalid(field, &k, "keys are 1 to 253 characters"));
        }
        if v.is_null() {
            if target.remove(&k).is_none() {
                return Err(Error::Unprocessable(format!(
                    "{k} does not exist under {field}"
                )));
            }
        } else {
            target.insert(k, v);
        }
    }
    Ok(())
}

/// Autoscale rules as Deis takes them: `{"min": N, "max": M, "cpu_percent": P}`.
fn check_autoscale(rules: &BTreeMap<String, serde_json::Value>) -> Result<()> {
    for (kind, rule) in rules {
        validate::process_type(kind)?;
        if rule.is_null() {
            continue;
        }
        let num = |f: &str| rule.get(f).and_then(serde_json::Value::as_i64);
        match (num("min"), num("max"), num("cpu_percent")) {
            (Some(min), Some(max), Some(cpu))
                if min >= 1 && max >= min && (1..=100).contains(&cpu) => {}
            _ => {
                return Err(Error::invalid(
                    "autoscale",
                    &format!("{kind}={rule}"),
                    "a rule is {\"min\": N, \"max\": M, \"cpu_percent\": P} with 1 <= N <= M and 1 <= P <= 100",
                ));
            }
        }
    }
    Ok(())
}

impl Controller {
    /// The app's domains.
    pub async fn list_domains(
        &self,
        caller: &User,
        app: &str,
        page: PageRequest,
    ) -> Result<Page<Domain>> {
        let (caller, app) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                let count = rows::count(
                    c,
                    "SELECT COUNT(*) FROM domains WHERE app_uuid = $1",
                    &[a.app.uuid.as_str().into()],
                )?;
                let sql = format!(
                    "{DOMAIN_SELECT} WHERE d.app_uuid = $1 ORDER BY d.domain LIMIT $2 OFFSET $3"
                );
                let results = c
                    .query(
                        &sql,
                        &[
                            a.app.uuid.into(),
                            i64::from(page.limit).into(),
                            i64::from(page.offset).into(),
                        ],
                    )?
                    .iter()
                    .map(domain_row)
                    .collect();
                Ok(Page { count, results })
            })
            .await
    }

    /// Adds a domain to the app; a domain belongs to one app.
    pub async fn add_domain(&self, caller: &User, app: &str, domain: &str) -> Result<Domain> {
        let domain = domain.trim().to_string();
        check_domain(&domain)?;
        let (caller, name) = (caller.clone(), app.to_string());
        let (d, uuid) = self
            .store
            .write(move |c| {
                let a = app_for(c, &caller, &name, Access::Use)?;
                let t = now();
                let r = c.execute(
                    "INSERT INTO domains (uuid, app_uuid, owner, domain, cert_uuid, created, updated) VALUES ($1, $2, $3, $4, NULL, $5, $6)",
                    &[
                        uuid::Uuid::new_v4().to_string().into(),
                        a.app.uuid.as_str().into(),
                        caller.username.as_str().into(),
                        domain.as_str().into(),
                        t.as_str().into(),
                        t.into(),
                    ],
                );
                if let Err(StoreError::Unique(_)) = r {
                    return Err(Error::invalid("domain", &domain, "Domain is already in use by another application"));
                }
                r?;
                let sql = format!("{DOMAIN_SELECT} WHERE d.domain = $1");
                let d = c
                    .query_opt(&sql, &[domain.as_str().into()])?
                    .map(|r| domain_row(&r))
                    .ok_or_else(|| Error::Internal("domain vanished after insert".into()))?;
                Ok::<_, Error>((d, a.app.uuid))
            })
            .await?;
        self.notify(&uuid);
        Ok(d)
    }

    /// Removes a domain from the app.
    pub async fn remove_domain(&self, caller: &User, app: &str, domain: &str) -> Result<()> {
        let (caller, name, domain) = (caller.clone(), app.to_string(), domain.to_string());
        let uuid = self
            .store
            .write(move |c| {
                let a = app_for(c, &caller, &name, Access::Use)?;
                let n = c.execute(
                    "DELETE FROM domains WHERE app_uuid = $1 AND domain = $2",
                    &[a.app.uuid.as_str().into(), domain.as_str().into()],
                )?;
                if n == 0 {
                    return Err(Error::NotFound(format!(
                        "domain {domain:?} not found in {name} (see deis domains -a {name})"
                    )));
                }
                Ok(a.app.uuid)
            })
            .await?;
        self.notify(&uuid);
        Ok(())
    }

    /// The app's settings.
    pub async fn get_settings(&self, caller: &User, app: &str) -> Result<AppSettings> {
        let (caller, app) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                settings_of(c, &a)
            })
            .await
    }

    /// Changes the app's settings.
    pub async fn set_settings(
        &self,
        caller: &User,
        app: &str,
        patch: SettingsPatch,
    ) -> Result<AppSettings> {
        if let Some(w) = &patch.whitelist {
            check_whitelist(w)?;
        }
        if let Some(a) = &patch.autoscale {
            check_autoscale(a)?;
        }
        self.change_settings(caller, app, move |body| {
            if let Some(m) = patch.maintenance {
                body.maintenance = m;
            }
            if let Some(r) = patch.routable {
                body.routable = r;
            }
            if let Some(w) = patch.whitelist {
                body.whitelist = w;
            }
            if let Some(a) = patch.autoscale {
                merge("autoscale", &mut body.autoscale, a)?;
            }
            if let Some(l) = patch.label {
                merge("label", &mut body.label, l)?;
            }
            Ok(())
        })
        .await?;
        self.get_settings(caller, app).await
    }

    async fn change_settings(
        &self,
        caller: &User,
        app: &str,
        change: impl FnOnce(&mut SettingsBody) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let (caller, name) = (caller.clone(), app.to_string());
        let uuid = self
            .store
            .write(move |c| {
                let a = app_for(c, &caller, &name, Access::Use)?;
                let mut body = routing::settings(c, &a.app.uuid)?;
                change(&mut body)?;
                save_settings(c, &a, &caller.username, &body)?;
                Ok::<_, Error>(a.app.uuid)
            })
            .await?;
        self.notify(&uuid);
        Ok(())
    }

    /// The app's whitelisted addresses.
    pub async fn get_whitelist(&self, caller: &User, app: &str) -> Result<Vec<String>> {
        Ok(self.get_settings(caller, app).await?.whitelist)
    }

    /// Adds addresses (IPv4/IPv6, optionally CIDR) to the whitelist.
    pub async fn add_whitelist(
        &self,
        caller: &User,
        app: &str,
        addresses: Vec<String>,
    ) -> Result<Vec<String>> {
        if addresses.is_empty() {
            return Err(Error::invalid(
                "addresses",
                "[]",
                "give at least one address, e.g. 10.0.0.0/8",
            ));
        }
        check_whitelist(&addresses)?;
        self.change_settings(caller, app, move |body| {
            for a in addresses {
                if !body.whitelist.contains(&a) {
                    body.whitelist.push(a);
                }
            }
            Ok(())
        })
        .await?;
        self.get_whitelist(caller, app).await
    }

    /// Removes addresses from the whitelist; each must be on it.
    pub async fn remove_whitelist(
        &self,
        caller: &User,
        app: &str,
        addresses: Vec<String>,
    ) -> Result<()> {
        if addresses.is_empty() {
            return Err(Error::invalid(
                "addresses",
                "[]",
                "give at least one address to remove",
            ));
        }
        self.change_settings(caller, app, move |body| {
            for a in &addresses {
                let before = body.whitelist.len();
                body.whitelist.retain(|w| w != a);
                if body.whitelist.len() == before {
                    return Err(Error::Unprocessable(format!(
                        "{a} does not exist in the whitelist"
                    )));
                }
            }
            Ok(())
        })
        .await
    }

    /// The app's TLS setting.
    pub async fn get_tls(&self, caller: &User, app: &str) -> Result<Tls> {
        let (caller, app) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                tls_of(c, &a)
            })
            .await
    }

    /// Enforces (or stops enforcing) HTTPS.
    pub async fn set_tls(&self, caller: &User, app: &str, https_enforced: bool) -> Result<Tls> {
        self.change_settings(caller, app, move |body| {
            body.https_enforced = https_enforced;
            Ok(())
        })
        .await?;
        self.get_tls(caller, app).await
    }

    /// Restarts processes: all, one type, or one by name (which must be the app's).
    pub async fn restart(&self, caller: &User, app: &str, which: Restart) -> Result<Vec<Process>> {
        let (c1, name) = (caller.clone(), app.to_string());
        let app_uuid = self
            .store
            .read(move |c| app_for(c, &c1, &name, Access::Use).map(|a| a.app.uuid))
            .await?;
        match &which {
            Restart::All => {}
            Restart::Type(t) => validate::process_type(t)?,
            Restart::Name(n) => {
                let known = self.processes(caller, app, None).await?;
                if !known.iter().any(|p| &p.name == n) {
                    return Err(Error::NotFound(format!(
                        "process {n:?} not found in {app} (see deis ps -a {app})"
                    )));
                }
            }
        }
        let mut procs: Vec<Process> = self
            .runtime
            .restart(app, &which)
            .await
            .map_err(|e| match e {
                crate::runtime::Error::NotFound(m) => Error::NotFound(m),
                crate::runtime::Error::Invalid(m) => Error::BadRequest(m),
                crate::runtime::Error::Backend(m) => {
                    Error::Unavailable(format!("the runtime could not restart {app}: {m}"))
                }
            })?
            .into_iter()
            .map(Process::from)
            .collect();
        // The replaced processes drain until they stop: the router must leave them now.
        self.republish(&app_uuid, app).await;
        procs.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        Ok(procs)
    }

    /// Runs a one-off command with the serving release's image and config.
    pub async fn run_command(&self, caller: &User, app: &str, command: &str) -> Result<RunOutput> {
        if command.trim().is_empty() {
            return Err(Error::invalid(
                "command",
                command,
                "give a command to run, e.g. deis run -- ls",
            ));
        }
        if command.len() > 64 * 1024 {
            return Err(Error::invalid(
                "command",
                command,
                "a command is at most 64 KiB",
            ));
        }
        let (caller, name) = (caller.clone(), app.to_string());
        let want = self
            .store
            .read(move |c| {
                let a = app_for(c, &caller, &name, Access::Use)?;
                let sql = format!("{RELEASE_SELECT} WHERE r.app_uuid = $1 AND r.state = 'deployed' ORDER BY r.version DESC LIMIT 1");
                let release = c
                    .query_opt(&sql, &[a.app.uuid.as_str().into()])?
                    .map(|r| rows::release(&r))
                    .ok_or_else(|| Error::BadRequest(format!("{name} has no deployed release yet")))?;
                let Some(build) = &release.build else {
                    return Err(Error::BadRequest(format!(
                        "{name} has no build to run: deploy one first (git push deis main, or deis pull IMAGE -a {name})"
                    )));
                };
                let build = super::releases::build_by_uuid(c, build)?;
                let config = super::releases::config_by_uuid(c, &release.config)?;
                Ok(desired(&a.app, &release, Some(&build), &config))
            })
            .await?;
        self.runtime
            .run(&want, command, RUN_TIMEOUT)
            .await
            .map_err(|e| match e {
                crate::runtime::Error::Invalid(m) => Error::BadRequest(m),
                crate::runtime::Error::NotFound(m) => Error::NotFound(m),
                crate::runtime::Error::Backend(m) => Error::Unavailable(format!(
                    "the runtime could not run the command for {app}: {m}"
                )),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        for ok in ["example.com", "www.example.com", "*.example.com", "a-b.c0"] {
            check_domain(ok).unwrap();
        }
        for (bad, why) in [
            ("", "required"),
            ("Example.com", "lowercase"),
            ("-a.com", "\"-a\""),
            ("a..com", "\"\""),
            ("1.2.3.4", "IP"),
            ("a_b.com", "a_b"),
        ] {
            let e = check_domain(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn autoscale_rules() {
        let ok: BTreeMap<String, serde_json::Value> = [(
            "web".into(),
            serde_json::json!({"min": 1, "max": 3, "cpu_percent": 50}),
        )]
        .into();
        check_autoscale(&ok).unwrap();
        let bad: BTreeMap<String, serde_json::Value> = [(
            "web".into(),
            serde_json::json!({"min": 4, "max": 3, "cpu_percent": 50}),
        )]
        .into();
        assert!(
            check_autoscale(&bad)
                .unwrap_err()
                .to_string()
                .contains("web=")
        );
    }
}
