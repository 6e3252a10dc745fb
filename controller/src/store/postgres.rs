//! The PostgreSQL connection (production).

use super::{Backend, Conn, Row, StoreError, Value};
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

struct Pg {
    client: postgres::Client,
    /// Prepared statements by SQL text: one round trip per query instead of two.
    statements: std::collections::HashMap<String, postgres::Statement>,
}

impl Pg {
    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(sql).map_err(map_err)?;
        // Queries are a fixed set of texts; the bound only guards against surprises.
        if self.statements.len() >= 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

/// Connects to PostgreSQL (plain TCP or Unix socket, as the URL says).
pub(super) fn connect(url: &str) -> Result<Box<dyn Conn>, StoreError> {
    let client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| StoreError::Open {
        url: redact(url),
        reason: e.to_string(),
    })?;
    Ok(Box::new(Pg {
        client,
        statements: Default::default(),
    }))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

fn map_err(e: postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == postgres::error::SqlState::UNIQUE_VIOLATION {
            return StoreError::Unique(db.message().to_string());
        }
        return StoreError::Db(db.message().to_string());
    }
    StoreError::Db(e.to_string())
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT2 => (*v as i16).to_sql(ty, out),
                Type::INT4 => (*v as i32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(t) => match *ty {
                Type::INT8 => t.parse::<i64>()?.to_sql(ty, out),
                _ => t.as_str().to_sql(ty, out),
            },
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for Pg {
    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.prepare(sql)?;
        let rows = self.client.query(&stmt, &params(values)).map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut vals = Vec::with_capacity(r.len());
            for (i, col) in r.columns().iter().enumerate() {
                let v = match *col.type_() {
                    Type::INT8 => r
                        .try_get::<_, Option<i64>>(i)
                        .map_err(map_err)?
                        .map_or(Value::Null, Value::Int),
                    Type::INT4 => r
                        .try_get::<_, Option<i32>>(i)
                        .map_err(map_err)?
                        .map_or(Value::Null, |v| Value::Int(v.into())),
                    Type::INT2 => r
                        .try_get::<_, Option<i16>>(i)
                        .map_err(map_err)?
                        .map_or(Value::Null, |v| Value::Int(v.into())),
                    Type::BOOL => r
                        .try_get::<_, Option<bool>>(i)
                        .map_err(map_err)?
                        .map_or(Value::Null, |v| Value::Int(v.into())),
                    _ => r
                        .try_get::<_, Option<String>>(i)
                        .map_err(map_err)?
                        .map_or(Value::Null, Value::Text),
                };
                vals.push(v);
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let stmt = self.prepare(sql)?;
        self.client.execute(&stmt, &params(values)).map_err(map_err)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(map_err)
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        self.batch("BEGIN ISOLATION LEVEL READ COMMITTED")
    }

    fn reset(&mut self) -> bool {
        // Outside a transaction ROLLBACK only warns, so it is also the liveness probe:
        // one round trip, where a ROLLBACK and a `SELECT 1` took two.
        !self.client.is_closed() && self.client.batch_execute("ROLLBACK").is_ok()
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_password() {
        assert_eq!(
            super::redact("postgres://bob:hunter2@db:5432/wf"),
            "postgres://bob:***@db:5432/wf"
        );
        assert_eq!(super::redact("postgres://db/wf"), "postgres://db/wf");
    }
}
