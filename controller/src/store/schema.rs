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
    Ok(())
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
