//! Every stored row carries a format version (schema step 4 adds `row_format` where a table had
//! none; shares have had `format` from the start). The store refuses to open a database holding
//! a row in a format newer than this build reads, instead of misreading it.

use rusqlite::Transaction;

use super::sqlite::backend;
use super::{StoreError, StoreResult};
use crate::sealing::SHARE_FORMAT;

/// The format of every row this build writes (except shares: `sealing::SHARE_FORMAT`).
pub const ROW_FORMAT: u32 = 1;

const TABLES: [&str; 8] = [
    "tokens",
    "logins",
    "objects",
    "staged_tx",
    "keys",
    "refresh_fences",
    "operator_tokens",
    "access_keys",
];

/// Schema step 4.
pub(super) fn v3_to_v4() -> String {
    TABLES
        .iter()
        .map(|t| {
            format!("ALTER TABLE {t} ADD COLUMN row_format INTEGER NOT NULL DEFAULT {ROW_FORMAT};")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Refuse rows written by a newer release.
pub(super) fn check_readable(tx: &Transaction<'_>) -> StoreResult<()> {
    let newest = |sql: &str| -> StoreResult<u32> {
        tx.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|v| v as u32)
            .map_err(backend)
    };
    for t in TABLES {
        let f = newest(&format!("SELECT coalesce(max(row_format), 0) FROM {t}"))?;
        if f > ROW_FORMAT {
            return Err(newer(t, f, ROW_FORMAT));
        }
    }
    let f = newest("SELECT coalesce(max(format), 0) FROM shares")?;
    if f > SHARE_FORMAT {
        return Err(newer("shares", f, SHARE_FORMAT));
    }
    Ok(())
}

fn newer(table: &str, found: u32, known: u32) -> StoreError {
    StoreError::Backend(format!(
        "table {table} holds rows in format {found}; this build reads up to {known}: \
         upgrade keyfrag-server"
    ))
}

#[cfg(test)]
mod tests {
    use crate::store::{AccessKeyStore, SqliteStore, TokenStore};

    #[test]
    fn rows_of_a_newer_format_keep_the_store_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cell.db");
        let store = SqliteStore::open(&path).unwrap();
        store.create_token("t", 1).unwrap();
        store.token_state("t").unwrap();
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let formats: i64 = conn
            .query_row("SELECT row_format FROM operator_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(formats, super::ROW_FORMAT as i64);
        conn.execute("UPDATE operator_tokens SET row_format = 2", [])
            .unwrap();
        drop(conn);
        let e = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("operator_tokens holds rows in format 2"), "{e}");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE operator_tokens SET row_format = 1", [])
            .unwrap();
        drop(conn);
        SqliteStore::open(&path).unwrap();
    }
}
