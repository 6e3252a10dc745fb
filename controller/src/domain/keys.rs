//! SSH keys users push with.

use super::Controller;
use super::rows::{self, KEY_SELECT};
use crate::error::{Error, Result};
use crate::model::{Key, Page, PageRequest, User, now};
use crate::store::StoreError;
use crate::{sshkey, validate};

impl Controller {
    /// The caller's keys, by name.
    pub async fn list_keys(&self, caller: &User, page: PageRequest) -> Result<Page<Key>> {
        let uid = caller.id;
        self.store
            .read(move |c| {
                let count = rows::count(
                    c,
                    "SELECT COUNT(*) FROM keys WHERE user_id = $1",
                    &[uid.into()],
                )?;
                let sql =
                    format!("{KEY_SELECT} WHERE k.user_id = $1 ORDER BY k.name LIMIT $2 OFFSET $3");
                let results = c
                    .query(
                        &sql,
                        &[
                            uid.into(),
                            i64::from(page.limit).into(),
                            i64::from(page.offset).into(),
                        ],
                    )?
                    .iter()
                    .map(rows::key)
                    .collect();
                Ok(Page { count, results })
            })
            .await
    }

    /// Adds a key; `id` defaults to the key's comment.
    pub async fn add_key(&self, caller: &User, id: &str, public: &str) -> Result<Key> {
        let parsed = sshkey::parse(public)?;
        let id = match (id.trim(), &parsed.comment) {
            ("", Some(comment)) => comment.clone(),
            ("", None) => {
                return Err(Error::invalid(
                    "id",
                    "",
                    "the key has no comment to name it by: pass an id",
                ));
            }
            (id, _) => id.to_string(),
        };
        validate::key_id(&id)?;
        let uid = caller.id;
        let public = match &parsed.comment {
            Some(comment) => format!("{} {comment}", parsed.canonical),
            None => parsed.canonical.clone(),
        };
        self.store
            .write(move |c| {
                let t = now();
                let uuid = uuid::Uuid::new_v4().to_string();
                let dup_name = rows::count(
                    c,
                    "SELECT COUNT(*) FROM keys WHERE user_id = $1 AND name = $2",
                    &[uid.into(), id.as_str().into()],
                )?;
                if dup_name > 0 {
                    return Err(Error::invalid(
                        "id",
                        &id,
                        // Deis's words: its SDK recognizes the error by them.
                        "SSH Key with this id already exists.",
                    ));
                }
                let r = c.execute(
                    "INSERT INTO keys (uuid, user_id, name, public, fingerprint, fingerprint_sha256, created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        uuid.as_str().into(),
                        uid.into(),
                        id.as_str().into(),
                        public.into(),
                        parsed.md5.into(),
                        parsed.sha256.as_str().into(),
                        t.as_str().into(),
                        t.into(),
                    ],
                );
                if let Err(StoreError::Unique(_)) = r {
                    return Err(Error::invalid(
                        "public",
                        &parsed.sha256,
                        "Public Key is already in use",
                    ));
                }
                r?;
                let sql = format!("{KEY_SELECT} WHERE k.uuid = $1");
                let row = c
                    .query_opt(&sql, &[uuid.into()])?
                    .ok_or_else(|| Error::Internal("key vanished after insert".into()))?;
                Ok(rows::key(&row))
            })
            .await
    }

    /// One of the caller's keys.
    pub async fn get_key(&self, caller: &User, id: &str) -> Result<Key> {
        let (uid, id) = (caller.id, id.to_string());
        self.store
            .read(move |c| {
                let sql = format!("{KEY_SELECT} WHERE k.user_id = $1 AND k.name = $2");
                c.query_opt(&sql, &[uid.into(), id.as_str().into()])?
                    .map(|r| rows::key(&r))
                    .ok_or_else(|| {
                        Error::NotFound(format!("key {id:?} not found (see deis keys:list)"))
                    })
            })
            .await
    }

    /// Removes one of the caller's keys.
    pub async fn remove_key(&self, caller: &User, id: &str) -> Result<()> {
        let (uid, id) = (caller.id, id.to_string());
        self.store
            .write(move |c| {
                let n = c.execute(
                    "DELETE FROM keys WHERE user_id = $1 AND name = $2",
                    &[uid.into(), id.as_str().into()],
                )?;
                if n == 0 {
                    return Err(Error::NotFound(format!(
                        "key {id:?} not found (see deis keys:list)"
                    )));
                }
                Ok(())
            })
            .await
    }
}
