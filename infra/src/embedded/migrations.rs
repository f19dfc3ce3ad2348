//! Schema migrations: SQL files embedded in the binary, applied in order inside one transaction
//! and tracked with `PRAGMA user_version` (migration N done means `user_version >= N`).
//!
//! A database whose version is newer than the last migration this binary knows was written by
//! a newer openwa; opening it could corrupt data that binary relies on, so it is refused.

use openwa_core::Error;
use rusqlite::Connection;

use super::db::sql_error;

/// Every migration, in order. Append only: never edit one that has shipped.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the schema up to [`SCHEMA_VERSION`].
pub(crate) fn apply(conn: &mut Connection) -> Result<(), Error> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    let current: u32 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_error)?;
    if current > SCHEMA_VERSION {
        return Err(newer_schema(current));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i + 1;
        tx.execute_batch(sql)
            .map_err(|e| Error::unexpected(format!("migration {version} failed: {e}")))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(sql_error)?;
        tracing::info!(version, "applied database migration");
    }
    tx.commit().map_err(sql_error)
}

fn newer_schema(found: u32) -> Error {
    Error::unexpected(format!(
        "the database schema version {found} is newer than this openwa binary supports ({SCHEMA_VERSION}); \
         upgrade openwa or point it at another data directory"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_schema_newer_than_the_binary_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = apply(&mut conn).unwrap_err();
        assert!(
            err.to_string()
                .contains("newer than this openwa binary supports"),
            "{err}"
        );
    }
}
