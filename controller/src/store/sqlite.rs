//! The SQLite connection (the embedded default).

use super::{Backend, Conn, Row, StoreError, Value};
use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, ValueRef};

struct Sqlite(rusqlite::Connection);

/// Opens a SQLite database in WAL mode with foreign keys on.
pub(super) fn connect(path: &str) -> Result<Box<dyn Conn>, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open {
        url: path.to_string(),
        reason: e.to_string(),
    };
    let conn = rusqlite::Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(open_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(Box::new(Sqlite(conn)))
}

/// `$N` -> `?N`: SQLite's positional form, so both backends share one SQL text.
///
/// A pure lexer pass: string literals (`'...'`), quoted identifiers (`"..."`, `` `...` ``,
/// `[...]`) and comments (`-- ...`, `/* ... */`) are copied untouched, and so is a `$`
/// inside an identifier (`a$1`). SQL without `$` is returned as is, without copying.
pub(super) fn rewrite(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut i = 0;
    // Every delimiter is ASCII, and UTF-8 never reuses ASCII bytes inside a multi-byte
    // character, so scanning bytes is exact and every `$` is a char boundary.
    while i < b.len() {
        i = match b[i] {
            q @ (b'\'' | b'"' | b'`') => skip_quoted(b, i + 1, q),
            b'[' => find(b, i + 1, b"]").map_or(b.len(), |j| j + 1),
            b'-' if b.get(i + 1) == Some(&b'-') => find(b, i + 2, b"\n").map_or(b.len(), |j| j + 1),
            b'/' if b.get(i + 1) == Some(&b'*') => find(b, i + 2, b"*/").map_or(b.len(), |j| j + 2),
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                out.push_str(&sql[copied..i]);
                out.push('?');
                copied = i + 1;
                i + 1
            }
            c if is_ident(c) => {
                // The whole word, so a `$` inside an identifier is not a placeholder.
                let mut j = i + 1;
                while j < b.len() && (is_ident(b[j]) || b[j] == b'$') {
                    j += 1;
                }
                j
            }
            _ => i + 1,
        };
    }
    if copied == 0 {
        return Cow::Borrowed(sql);
    }
    out.push_str(&sql[copied..]);
    Cow::Owned(out)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// The index of the first `needle` at or after `from`.
fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The index just past the quote closing a quoted run that started before `from`;
/// a doubled quote is an escaped one. Unterminated runs end at the end of the text.
fn skip_quoted(b: &[u8], mut from: usize, q: u8) -> usize {
    loop {
        match find(b, from, &[q]) {
            Some(j) if b.get(j + 1) == Some(&q) => from = j + 2,
            Some(j) => return j + 1,
            None => return b.len(),
        }
    }
}

fn map_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e
        && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    {
        return StoreError::Unique(msg.clone().unwrap_or_else(|| e.to_string()));
    }
    StoreError::Db(e.to_string())
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

impl Conn for Sqlite {
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(&rewrite(sql)).map_err(map_err)?;
        let n = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(map_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(map_err)? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(match r.get_ref(i).map_err(map_err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Int(v as i64),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(&rewrite(sql)).map_err(map_err)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(map_err)?;
        Ok(n as u64)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.execute_batch(sql).map_err(map_err)
    }

    fn begin_write(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade.
        self.batch("BEGIN IMMEDIATE")
    }

    fn reset(&mut self) -> bool {
        // An open SQLite file does not go away: only a stuck transaction makes it unusable.
        self.0.is_autocommit() || self.0.execute_batch("ROLLBACK").is_ok()
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;
    use proptest::prelude::*;

    #[test]
    fn rewrites_placeholders_only() {
        let table = [
            ("SELECT $1, '$x', $12 FROM t", "SELECT ?1, '$x', ?12 FROM t"),
            ("SELECT 1", "SELECT 1"),
            ("SELECT '$1'", "SELECT '$1'"),
            ("SELECT 'it''s $1', $2", "SELECT 'it''s $1', ?2"),
            ("SELECT '', $1", "SELECT '', ?1"),
            (
                r#"SELECT "a$1", "b""$2" FROM t WHERE x = $1"#,
                r#"SELECT "a$1", "b""$2" FROM t WHERE x = ?1"#,
            ),
            ("SELECT `$1`, [$2], $3", "SELECT `$1`, [$2], ?3"),
            ("-- $1\nSELECT $2", "-- $1\nSELECT ?2"),
            ("SELECT $2 -- $1", "SELECT ?2 -- $1"),
            ("/* $1 */ SELECT $2 /* $3", "/* $1 */ SELECT ?2 /* $3"),
            ("SELECT 4/2, 3-1, $1", "SELECT 4/2, 3-1, ?1"),
            ("SELECT a$1, _$2 FROM t", "SELECT a$1, _$2 FROM t"),
            ("SELECT ($1+$2)", "SELECT (?1+?2)"),
            ("SELECT '$1", "SELECT '$1"),
            ("SELECT $, $a, $", "SELECT $, $a, $"),
            ("SELECT 'é$1', é$1, $1", "SELECT 'é$1', é$1, ?1"),
        ];
        for (sql, want) in table {
            assert_eq!(rewrite(sql), want, "rewriting {sql:?}");
        }
    }

    #[test]
    fn borrows_when_nothing_changes() {
        assert!(matches!(
            rewrite("SELECT '$1'"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    /// One lexical piece of SQL: its text, and its text after rewriting.
    fn piece() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            (1u32..1000).prop_map(|n| (format!("${n}"), format!("?{n}"))),
            "[a-z_ ,()=*<>.0-9]{1,12}".prop_map(|w| (w.clone(), w)),
            any::<String>().prop_map(|s| {
                let t = format!("'{}'", s.replace('\'', "''"));
                (t.clone(), t)
            }),
            any::<String>().prop_map(|s| {
                let t = format!("\"{}\"", s.replace('"', "\"\""));
                (t.clone(), t)
            }),
            "[^\n]*".prop_map(|s| {
                let t = format!("--{s}\n");
                (t.clone(), t)
            }),
            any::<String>()
                .prop_filter("no */", |s| !s.contains("*/"))
                .prop_map(|s| {
                    let t = format!("/*{s}*/");
                    (t.clone(), t)
                }),
        ]
    }

    proptest! {
        #[test]
        fn only_placeholders_outside_quotes_and_comments_change(pieces in prop::collection::vec(piece(), 0..12)) {
            let sql: Vec<&str> = pieces.iter().map(|(s, _)| s.as_str()).collect();
            let want: Vec<&str> = pieces.iter().map(|(_, w)| w.as_str()).collect();
            let sql = sql.join(" ");
            prop_assert_eq!(rewrite(&sql), want.join(" "));
        }

        #[test]
        fn changes_nothing_but_dollars_and_is_idempotent(sql in any::<String>()) {
            let once = rewrite(&sql);
            prop_assert_eq!(once.len(), sql.len());
            for (a, b) in sql.bytes().zip(once.bytes()) {
                prop_assert!(a == b || (a == b'$' && b == b'?'));
            }
            prop_assert_eq!(rewrite(&once), once.clone());
        }
    }
}
