//! Versioned schema migrations, applied in order inside one transaction each.

use super::{Backend, Conn, StoreError};

/// Each migration is one SQL text; `{ID}` is the backend's auto-increment key type.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id {ID},
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL DEFAULT '',
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    is_superuser BIGINT NOT NULL DEFAULT 0,
    is_staff BIGINT NOT NULL DEFAULT 0,
    is_active BIGINT NOT NULL DEFAULT 1,
    date_joined TEXT NOT NULL,
    last_login TEXT
);
CREATE TABLE tokens (
    digest TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created TEXT NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id, created);
CREATE TABLE keys (
    uuid TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    public TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    fingerprint_sha256 TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    UNIQUE (user_id, name)
);
CREATE TABLE apps (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES users(id),
    structure TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX apps_owner ON apps (owner_id);
CREATE TABLE perms (
    app_uuid TEXT NOT NULL REFERENCES apps(uuid) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (app_uuid, user_id)
);
CREATE INDEX perms_user ON perms (user_id);
CREATE TABLE configs (
    uuid TEXT PRIMARY KEY,
    app_uuid TEXT NOT NULL REFERENCES apps(uuid) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    body TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX configs_app ON configs (app_uuid);
CREATE TABLE builds (
    uuid TEXT PRIMARY KEY,
    app_uuid TEXT NOT NULL REFERENCES apps(uuid) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    image TEXT NOT NULL,
    sha TEXT NOT NULL DEFAULT '',
    procfile TEXT NOT NULL DEFAULT '{}',
    dockerfile TEXT NOT NULL DEFAULT '',
    seq BIGINT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE UNIQUE INDEX builds_app_seq ON builds (app_uuid, seq);
CREATE TABLE releases (
    uuid TEXT PRIMARY KEY,
    app_uuid TEXT NOT NULL REFERENCES apps(uuid) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    owner TEXT NOT NULL,
    build_uuid TEXT REFERENCES builds(uuid) ON DELETE CASCADE,
    config_uuid TEXT NOT NULL REFERENCES configs(uuid) ON DELETE CASCADE,
    summary TEXT NOT NULL,
    failed BIGINT NOT NULL DEFAULT 0,
    exception TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    UNIQUE (app_uuid, version)
);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE builds ADD COLUMN port BIGINT NOT NULL DEFAULT 0;
"#,
    // Releases are recorded first and rolled out by the reconcile loop: each has a state
    // (`pending`, `deployed`, `failed`). Releases from before the loop were rolled out inside
    // their request, so they count as deployed unless they failed.
    // A deploy lease per app serializes rollouts across controllers sharing one database.
    r#"
ALTER TABLE releases ADD COLUMN state TEXT NOT NULL DEFAULT 'deployed';
UPDATE releases SET state = 'failed' WHERE failed <> 0;
CREATE INDEX releases_app_state ON releases (app_uuid, state, version);
CREATE TABLE deploy_leases (
    app_uuid TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires BIGINT NOT NULL
);
"#,
    // What the router needs per app: custom domains, certificates attached to them, and the
    // app's settings (maintenance, routable, whitelist, label, autoscale, https enforced).
    r#"
CREATE TABLE certs (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    certificate TEXT NOT NULL,
    key TEXT NOT NULL,
    common_name TEXT NOT NULL,
    san TEXT NOT NULL DEFAULT '[]',
    fingerprint TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    starts TEXT NOT NULL,
    expires TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE domains (
    uuid TEXT PRIMARY KEY,
    app_uuid TEXT NOT NULL REFERENCES apps(uuid) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    domain TEXT NOT NULL UNIQUE,
    cert_uuid TEXT REFERENCES certs(uuid) ON DELETE SET NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX domains_app ON domains (app_uuid);
CREATE TABLE app_settings (
    app_uuid TEXT PRIMARY KEY REFERENCES apps(uuid) ON DELETE CASCADE,
    uuid TEXT NOT NULL,
    owner TEXT NOT NULL,
    body TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
"#,
    // Builds say how they were made and what they produced; failed builds are recorded
    // too (never released), with the output the pusher saw and the reason.
    r#"
ALTER TABLE builds ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN state TEXT NOT NULL DEFAULT 'succeeded';
ALTER TABLE builds ADD COLUMN error TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN log TEXT NOT NULL DEFAULT '';
"#,
    // Config values stored once, by content (SHA-256 hex of the value): a config change copies
    // only references to the values it keeps, not the values. `configs.values_by_hash` = 1
    // means the row's values are in `config_value_refs` and its body's `values` is empty; rows
    // from before are moved by `move_config_values` after the migrations.
    r#"
CREATE TABLE config_values (
    hash TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE config_value_refs (
    config_uuid TEXT NOT NULL REFERENCES configs(uuid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    hash TEXT NOT NULL REFERENCES config_values(hash),
    PRIMARY KEY (config_uuid, name)
);
CREATE INDEX config_value_refs_hash ON config_value_refs (hash);
ALTER TABLE configs ADD COLUMN values_by_hash BIGINT NOT NULL DEFAULT 0;
"#,
];

/// Brings the schema up to date.
pub(super) fn migrate(conn: &mut dyn Conn) -> Result<(), StoreError> {
    in_transaction(conn, |c| {
        c.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
    })?;
    let id = match conn.backend() {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        in_transaction(conn, |c| {
            let done = c.query(
                "SELECT version FROM schema_migrations WHERE version = $1",
                &[version.into()],
            )?;
            if done.is_empty() {
                c.batch(&sql.replace("{ID}", id))?;
                c.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version.into()],
                )?;
            }
            Ok(())
        })?;
    }
    move_config_values(conn)
}

/// Content address of a config value.
pub(crate) fn value_hash(value: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

/// Stores `values` of config `config_uuid` by content: each distinct value once in
/// `config_values`, the config's names pointing at them in `config_value_refs`.
pub(crate) fn insert_config_values<'a>(
    c: &mut dyn Conn,
    config_uuid: &str,
    values: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), StoreError> {
    for (name, value) in values {
        let hash = value_hash(value);
        c.execute(
            "INSERT INTO config_values (hash, value) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
            &[hash.as_str().into(), value.as_str().into()],
        )?;
        c.execute(
            "INSERT INTO config_value_refs (config_uuid, name, hash) VALUES ($1, $2, $3)",
            &[config_uuid.into(), name.as_str().into(), hash.into()],
        )?;
    }
    Ok(())
}

/// Moves the values of configs written before values were stored by content out of their
/// bodies (idempotent: only rows with `values_by_hash = 0`, a batch per transaction).
fn move_config_values(conn: &mut dyn Conn) -> Result<(), StoreError> {
    loop {
        let mut moved = 0;
        in_transaction(conn, |c| {
            let rows = c.query(
                "SELECT uuid, body FROM configs WHERE values_by_hash = 0 LIMIT 100",
                &[],
            )?;
            moved = rows.len();
            for r in rows {
                let (uuid, body) = (r.text(0), r.text(1));
                let mut body: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| StoreError::Decode {
                        column: "configs.body",
                        key: uuid.clone(),
                        reason: e.to_string(),
                    })?;
                let values: std::collections::BTreeMap<String, String> = body
                    .get_mut("values")
                    .map(serde_json::Value::take)
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default();
                if let Some(obj) = body.as_object_mut() {
                    obj.insert("values".into(), serde_json::json!({}));
                }
                insert_config_values(c, &uuid, &values)?;
                c.execute(
                    "UPDATE configs SET body = $1, values_by_hash = 1 WHERE uuid = $2",
                    &[body.to_string().into(), uuid.as_str().into()],
                )?;
            }
            Ok(())
        })?;
        if moved == 0 {
            return Ok(());
        }
    }
}

/// Deletes config values no config refers to any more (after an app is destroyed).
pub(crate) fn delete_unused_config_values(c: &mut dyn Conn) -> Result<u64, StoreError> {
    c.execute(
        "DELETE FROM config_values WHERE NOT EXISTS (SELECT 1 FROM config_value_refs r WHERE r.hash = config_values.hash)",
        &[],
    )
}

/// Runs `step` in a write transaction that holds the migration lock: controllers starting
/// together on one PostgreSQL database take turns instead of failing on each other's tables.
/// (SQLite's `BEGIN IMMEDIATE` already serializes writers.)
fn in_transaction(
    conn: &mut dyn Conn,
    step: impl FnOnce(&mut dyn Conn) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    conn.begin_write()?;
    let out = (|| {
        if conn.backend() == Backend::Postgres {
            // Released at COMMIT or ROLLBACK; the key is arbitrary but fixed.
            conn.batch("SELECT pg_advisory_xact_lock(7243010201)")?;
        }
        step(conn)
    })();
    match out {
        Ok(()) => conn.batch("COMMIT"),
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}
