//! SQL column lists and row decoding shared by the domain modules.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::model::{App, Build, Config, ConfigBody, Key, Release, User};
use crate::store::{Conn, Row, StoreError, Value};

/// Column `i` of `r`, a JSON text stored in `column` (`table.column`) of the row whose key is
/// column 0. Malformed JSON is an error that says where it is: a default would hide the
/// damage and the next write would overwrite what is left of it.
fn json<T: serde::de::DeserializeOwned>(r: &Row, i: usize, column: &'static str) -> Result<T> {
    serde_json::from_str(&r.text(i)).map_err(|e| {
        Error::Store(StoreError::Decode {
            column,
            key: r.text(0),
            reason: e.to_string(),
        })
    })
}

/// Renders a stored timestamp the way Deis does (`2016-09-13T18:29:54Z`).
pub(crate) fn api_time(stored: &str) -> String {
    match stored.get(..19) {
        Some(head) if stored.len() > 19 => format!("{head}Z"),
        _ => stored.to_string(),
    }
}

pub(crate) const USER_COLS: &str = "u.id, u.username, u.email, u.first_name, u.last_name, u.is_superuser, u.is_staff, u.is_active, u.date_joined, u.last_login";

pub(crate) fn user(r: &Row) -> User {
    User {
        id: r.int(0),
        username: r.text(1),
        email: r.text(2),
        first_name: r.text(3),
        last_name: r.text(4),
        is_superuser: r.bool(5),
        is_staff: r.bool(6),
        is_active: r.bool(7),
        date_joined: api_time(&r.text(8)),
        last_login: r.opt_text(9).map(|t| api_time(&t)),
    }
}

pub(crate) fn user_by_name(c: &mut dyn Conn, username: &str) -> Result<User> {
    let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.username = $1");
    c.query_opt(&sql, &[username.into()])?
        .map(|r| user(&r))
        .ok_or_else(|| Error::NotFound(format!("user {username:?} not found")))
}

/// An app row plus what the access check needs.
#[derive(Debug, Clone)]
pub(crate) struct AppRow {
    pub app: App,
    pub owner_id: i64,
}

pub(crate) const APP_SELECT: &str = "SELECT a.uuid, a.name, u.username, a.structure, a.created, a.updated, a.owner_id FROM apps a JOIN users u ON u.id = a.owner_id";

/// [`APP_SELECT`] plus column 7: whether user `$2` is a collaborator.
pub(crate) const APP_ACCESS_SELECT: &str = "SELECT a.uuid, a.name, u.username, a.structure, a.created, a.updated, a.owner_id, EXISTS(SELECT 1 FROM perms p WHERE p.app_uuid = a.uuid AND p.user_id = $2) FROM apps a JOIN users u ON u.id = a.owner_id";

pub(crate) fn app(r: &Row) -> Result<AppRow> {
    Ok(AppRow {
        app: App {
            uuid: r.text(0),
            id: r.text(1),
            owner: r.text(2),
            structure: json(r, 3, "apps.structure")?,
            created: api_time(&r.text(4)),
            updated: api_time(&r.text(5)),
        },
        owner_id: r.int(6),
    })
}

pub(crate) const KEY_SELECT: &str = "SELECT k.uuid, k.name, u.username, k.public, k.fingerprint, k.created, k.updated FROM keys k JOIN users u ON u.id = k.user_id";

pub(crate) fn key(r: &Row) -> Key {
    Key {
        uuid: r.text(0),
        id: r.text(1),
        owner: r.text(2),
        public: r.text(3),
        fingerprint: r.text(4),
        created: api_time(&r.text(5)),
        updated: api_time(&r.text(6)),
    }
}

/// Configs; with `values_by_hash` (column 6) set, the values are in `config_value_refs`
/// (see [`super::releases::config_by_uuid`]).
pub(crate) const CONFIG_SELECT: &str = "SELECT c.uuid, a.name, c.owner, c.body, c.created, c.updated, c.values_by_hash FROM configs c JOIN apps a ON a.uuid = c.app_uuid";

pub(crate) fn config(r: &Row) -> Result<Config> {
    let body: ConfigBody = json(r, 3, "configs.body")?;
    Ok(Config {
        uuid: r.text(0),
        app: r.text(1),
        owner: r.text(2),
        values: body.values,
        memory: body.memory,
        cpu: body.cpu,
        tags: body.tags,
        registry: body.registry,
        healthcheck: body.healthcheck,
        created: api_time(&r.text(4)),
        updated: api_time(&r.text(5)),
    })
}

pub(crate) const BUILD_SELECT: &str = "SELECT b.uuid, a.name, b.owner, b.image, b.sha, b.procfile, b.dockerfile, b.created, b.updated, b.port, b.kind, b.digest, b.state, b.error FROM builds b JOIN apps a ON a.uuid = b.app_uuid";

pub(crate) fn build(r: &Row) -> Result<Build> {
    Ok(Build {
        uuid: r.text(0),
        app: r.text(1),
        owner: r.text(2),
        image: r.text(3),
        sha: r.text(4),
        procfile: json::<BTreeMap<String, String>>(r, 5, "builds.procfile")?,
        dockerfile: r.text(6),
        port: u16::try_from(r.int(9)).ok().filter(|p| *p > 0),
        kind: r.text(10),
        digest: r.text(11),
        state: r.text(12),
        error: r.text(13),
        log: None,
        created: api_time(&r.text(7)),
        updated: api_time(&r.text(8)),
    })
}

pub(crate) const RELEASE_SELECT: &str = "SELECT r.uuid, a.name, r.version, r.owner, r.build_uuid, r.config_uuid, r.summary, r.failed, r.exception, r.created, r.updated, r.state, COALESCE(rb.image, ''), COALESCE(rb.digest, '') FROM releases r JOIN apps a ON a.uuid = r.app_uuid LEFT JOIN builds rb ON rb.uuid = r.build_uuid";

pub(crate) fn release(r: &Row) -> Release {
    Release {
        uuid: r.text(0),
        app: r.text(1),
        version: r.int(2),
        owner: r.text(3),
        build: r.opt_text(4),
        config: r.text(5),
        summary: r.text(6),
        failed: r.bool(7),
        exception: r.text(8),
        state: r.text(11),
        image: r.text(12),
        digest: r.text(13),
        created: api_time(&r.text(9)),
        updated: api_time(&r.text(10)),
    }
}

/// `COUNT(*)` of a query.
pub(crate) fn count(c: &mut dyn Conn, sql: &str, params: &[Value]) -> Result<u64> {
    Ok(c.query(sql, params)?.first().map_or(0, |r| r.int(0)) as u64)
}
