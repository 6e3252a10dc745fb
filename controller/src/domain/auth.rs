//! Users, passwords and API tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::Digest;

use super::rows::{self, USER_COLS};
use super::{Controller, RegistrationMode};
use crate::error::{Error, Result};
use crate::model::{User, now};
use crate::store::StoreError;
use crate::validate;

/// Tokens kept per user; older ones are dropped on login.
const MAX_TOKENS_PER_USER: i64 = 50;

/// What `register` takes.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RegisterRequest {
    /// Login name.
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// Email (optional).
    #[serde(default)]
    pub email: String,
    /// Given name (optional).
    #[serde(default)]
    pub first_name: String,
    /// Family name (optional).
    #[serde(default)]
    pub last_name: String,
}

fn hash_password(pw: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing password: {e}")))
}

fn verify_password(pw: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(pw.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Password hashing is deliberately slow: keep it off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("password task: {e}")))
}

/// A fresh token: 20 random bytes as 40 hex digits (the Django REST framework form).
fn new_token() -> String {
    let mut b = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Tokens are stored only as their SHA-256.
pub(crate) fn token_digest(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

fn insert_token(c: &mut dyn crate::store::Conn, user_id: i64) -> Result<String> {
    let token = new_token();
    c.execute(
        "INSERT INTO tokens (digest, user_id, created) VALUES ($1, $2, $3)",
        &[token_digest(&token).into(), user_id.into(), now().into()],
    )?;
    Ok(token)
}

/// The token of an `Authorization` value: `token <t>` (Deis) or `Bearer <t>`.
pub fn token_from_authorization(value: &str) -> Result<&str> {
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !(scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        || token.is_empty()
    {
        return Err(Error::Unauthorized(
            "Invalid token header. Expected `Authorization: token <token>`.".into(),
        ));
    }
    Ok(token)
}

fn login_failed() -> Error {
    Error::invalid(
        "non_field_errors",
        "",
        "Unable to log in with provided credentials.",
    )
}

impl Controller {
    /// Resolves an API token to its user.
    pub async fn authenticate(&self, token: &str) -> Result<User> {
        if token.is_empty() || token.len() > 256 {
            return Err(Error::Unauthorized("Invalid token.".into()));
        }
        let digest = token_digest(token);
        self.store
            .read(move |c| {
                let sql = format!(
                    "SELECT {USER_COLS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = $1"
                );
                match c.query_opt(&sql, &[digest.into()])? {
                    Some(r) => {
                        let u = rows::user(&r);
                        if !u.is_active {
                            return Err(Error::Unauthorized("User inactive or deleted.".into()));
                        }
                        Ok(u)
                    }
                    None => Err(Error::Unauthorized("Invalid token.".into())),
                }
            })
            .await
    }

    /// Registers a user; the first one becomes the administrator.
    /// `caller` is the authenticated user, if the request carried a token.
    pub async fn register(&self, caller: Option<&User>, req: RegisterRequest) -> Result<User> {
        validate::username(&req.username)?;
        validate::password("password", &req.password)?;
        validate::email(&req.email)?;
        for (field, v) in [
            ("first_name", &req.first_name),
            ("last_name", &req.last_name),
        ] {
            if v.chars().count() > 150 || v.chars().any(char::is_control) {
                return Err(Error::invalid(field, v, "at most 150 printable characters"));
            }
        }
        let mode = self.settings.registration;
        let caller_is_admin = caller.is_some_and(|u| u.is_superuser);
        let pw = req.password.clone();
        let hash = blocking(move || hash_password(&pw)).await??;
        self.store
            .write(move |c| {
                let users = rows::count(c, "SELECT COUNT(*) FROM users", &[])?;
                let first = users == 0;
                if !first {
                    match mode {
                        RegistrationMode::Enabled => {}
                        RegistrationMode::AdminOnly if caller_is_admin => {}
                        RegistrationMode::AdminOnly => {
                            return Err(Error::Forbidden(
                                "registration is limited to administrators: ask an admin to run `deis register` for you".into(),
                            ));
                        }
                        RegistrationMode::Disabled => {
                            return Err(Error::Forbidden(
                                "registration is disabled on this platform".into(),
                            ));
                        }
                    }
                }
                let t = now();
                let inserted = c.execute(
                    "INSERT INTO users (username, email, first_name, last_name, password_hash, is_superuser, is_staff, is_active, date_joined) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)",
                    &[
                        req.username.as_str().into(),
                        req.email.into(),
                        req.first_name.into(),
                        req.last_name.into(),
                        hash.into(),
                        first.into(),
                        first.into(),
                        t.into(),
                    ],
                );
                match inserted {
                    Err(StoreError::Unique(_)) => {
                        return Err(Error::invalid(
                            "username",
                            &req.username,
                            "A user with that username already exists.",
                        ));
                    }
                    other => {
                        other?;
                    }
                }
                rows::user_by_name(c, &req.username)
            })
            .await
    }

    /// Checks a password and answers with a new API token.
    pub async fn login(&self, username: &str, password: &str) -> Result<String> {
        if username.is_empty() {
            return Err(Error::invalid(
                "username",
                "",
                "This field may not be blank.",
            ));
        }
        validate::password("password", password)?;
        let name = username.to_string();
        let found = self
            .store
            .read(move |c| {
                Ok::<_, Error>(
                    c.query_opt(
                        "SELECT id, password_hash, is_active FROM users WHERE username = $1",
                        &[name.into()],
                    )?
                    .map(|r| (r.int(0), r.text(1), r.bool(2))),
                )
            })
            .await?;
        let pw = password.to_string();
        let Some((id, hash, active)) = found else {
            // Spend the same time as a real check so usernames cannot be probed by timing.
            let _ = blocking(move || hash_password(&pw)).await;
            return Err(login_failed());
        };
        if !blocking(move || verify_password(&pw, &hash)).await? || !active {
            return Err(login_failed());
        }
        self.store
            .write(move |c| {
                let token = insert_token(c, id)?;
                c.execute(
                    "UPDATE users SET last_login = $1 WHERE id = $2",
                    &[now().into(), id.into()],
                )?;
                c.execute(
                    "DELETE FROM tokens WHERE user_id = $1 AND digest NOT IN (SELECT digest FROM tokens WHERE user_id = $2 ORDER BY created DESC LIMIT $3)",
                    &[id.into(), id.into(), MAX_TOKENS_PER_USER.into()],
                )?;
                Ok(token)
            })
            .await
    }

    /// Revokes tokens and issues a new one. Admins may name another user, or all users
    /// (then no token is returned).
    pub async fn regenerate_token(
        &self,
        caller: &User,
        username: Option<&str>,
        all: bool,
    ) -> Result<Option<String>> {
        if (all || username.is_some_and(|u| u != caller.username)) && !caller.is_superuser {
            return Err(Error::Forbidden(
                "only administrators can regenerate other users' tokens".into(),
            ));
        }
        let target = username.unwrap_or(&caller.username).to_string();
        self.store
            .write(move |c| {
                if all {
                    c.execute("DELETE FROM tokens", &[])?;
                    return Ok(None);
                }
                let user = rows::user_by_name(c, &target)?;
                c.execute("DELETE FROM tokens WHERE user_id = $1", &[user.id.into()])?;
                Ok(Some(insert_token(c, user.id)?))
            })
            .await
    }

    /// Deletes an account (admins may name another user). Refused while it owns apps.
    pub async fn cancel(&self, caller: &User, username: Option<&str>) -> Result<()> {
        let target = username.unwrap_or(&caller.username).to_string();
        if target != caller.username && !caller.is_superuser {
            return Err(Error::Forbidden(
                "only administrators can delete other users".into(),
            ));
        }
        self.store
            .write(move |c| {
                let user = rows::user_by_name(c, &target)?;
                let apps = rows::count(
                    c,
                    "SELECT COUNT(*) FROM apps WHERE owner_id = $1",
                    &[user.id.into()],
                )?;
                if apps > 0 {
                    return Err(Error::Conflict(format!(
                        "{target} still has applications assigned. Delete or transfer ownership ({apps} apps)"
                    )));
                }
                if user.is_superuser {
                    let admins = rows::count(
                        c,
                        "SELECT COUNT(*) FROM users WHERE is_superuser = 1",
                        &[],
                    )?;
                    if admins <= 1 {
                        return Err(Error::Conflict(format!(
                            "{target} is the last administrator; make another user admin first (deis perms:create USER --admin)"
                        )));
                    }
                }
                c.execute("DELETE FROM users WHERE id = $1", &[user.id.into()])?;
                Ok(())
            })
            .await
    }

    /// Changes a password. Users give their current one; admins may reset another user's.
    pub async fn passwd(
        &self,
        caller: &User,
        username: Option<&str>,
        password: &str,
        new_password: &str,
    ) -> Result<()> {
        validate::password("new_password", new_password)?;
        let target = username.unwrap_or(&caller.username).to_string();
        let other = target != caller.username;
        if other && !caller.is_superuser {
            return Err(Error::Forbidden(
                "only administrators can change other users' passwords".into(),
            ));
        }
        let name = target.clone();
        let (id, hash) = self
            .store
            .read(move |c| {
                c.query_opt(
                    "SELECT id, password_hash FROM users WHERE username = $1",
                    &[name.as_str().into()],
                )?
                .map(|r| (r.int(0), r.text(1)))
                .ok_or_else(|| Error::NotFound(format!("user {name:?} not found")))
            })
            .await?;
        if !other {
            let pw = password.to_string();
            if !blocking(move || verify_password(&pw, &hash)).await? {
                return Err(Error::invalid(
                    "password",
                    "<hidden>",
                    "Current password does not match",
                ));
            }
        }
        let np = new_password.to_string();
        let new_hash = blocking(move || hash_password(&np)).await??;
        self.store
            .write(move |c| {
                c.execute(
                    "UPDATE users SET password_hash = $1 WHERE id = $2",
                    &[new_hash.into(), id.into()],
                )?;
                Ok(())
            })
            .await
    }

    /// Every user (administrators only), by username.
    pub async fn list_users(
        &self,
        caller: &User,
        page: crate::model::PageRequest,
    ) -> Result<crate::model::Page<User>> {
        if !caller.is_superuser {
            return Err(Error::Forbidden(
                "only administrators can list users".into(),
            ));
        }
        self.store
            .read(move |c| {
                let count = rows::count(c, "SELECT COUNT(*) FROM users", &[])?;
                let sql = format!(
                    "SELECT {USER_COLS} FROM users u ORDER BY u.username LIMIT $1 OFFSET $2"
                );
                let results = c
                    .query(
                        &sql,
                        &[i64::from(page.limit).into(), i64::from(page.offset).into()],
                    )?
                    .iter()
                    .map(rows::user)
                    .collect();
                Ok(crate::model::Page { count, results })
            })
            .await
    }
}
