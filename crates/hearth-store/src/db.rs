//! The SQLite side: schema, and one function per query. Times are
//! microseconds since the Unix epoch.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{FileRecord, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    id           TEXT PRIMARY KEY,
    blob         TEXT NOT NULL UNIQUE,
    display_name TEXT,
    mime_type    TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    create_us    INTEGER NOT NULL,
    update_us    INTEGER NOT NULL,
    expire_us    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_newest ON files (create_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS files_expiry ON files (expire_us);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id    TEXT PRIMARY KEY,
    file_id      TEXT NOT NULL UNIQUE,
    display_name TEXT,
    mime_type    TEXT,
    size_bytes   INTEGER NOT NULL,
    received     INTEGER NOT NULL DEFAULT 0,
    create_us    INTEGER NOT NULL,
    update_us    INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

/// An open upload session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub upload_id: String,
    pub file_id: String,
    pub display_name: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: u64,
    pub received: u64,
    pub create_us: i64,
    pub update_us: i64,
}

/// Opens (creating) the database in WAL mode with full syncs: a commit that
/// returned survives a crash and a power cut.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(StoreError::db("opening the database"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(StoreError::db("configuring the database"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(StoreError::db("switching the database to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!("the files database runs in {mode} journal mode, not WAL");
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(StoreError::db("configuring the database"))?;
    conn.execute_batch(SCHEMA)
        .map_err(StoreError::db("creating the schema"))?;
    Ok(conn)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const FILE_COLUMNS: &str =
    "id, blob, display_name, mime_type, size_bytes, sha256, create_us, update_us, expire_us";

fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        id: r.get(0)?,
        blob: r.get(1)?,
        display_name: r.get(2)?,
        mime_type: r.get(3)?,
        size_bytes: to_u64(r.get(4)?),
        sha256_hex: r.get(5)?,
        create_time_us: r.get(6)?,
        update_time_us: r.get(7)?,
        expire_time_us: r.get(8)?,
    })
}

/// A file that has not expired at `now`.
pub fn live_file(conn: &Connection, id: &str, now: i64) -> Result<Option<FileRecord>, StoreError> {
    conn.query_row(
        &format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1 AND expire_us > ?2"),
        params![id, now],
        file_row,
    )
    .optional()
    .map_err(StoreError::db("reading a file"))
}

/// Whether a row (expired or not) holds this id.
pub fn any_file(conn: &Connection, id: &str) -> Result<Option<FileRecord>, StoreError> {
    conn.query_row(
        &format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1"),
        params![id],
        file_row,
    )
    .optional()
    .map_err(StoreError::db("reading a file"))
}

/// Unexpired files, newest first, strictly after the `(create_us, id)` cursor.
pub fn list_files(
    conn: &Connection,
    now: i64,
    after: Option<(i64, &str)>,
    limit: usize,
) -> Result<Vec<FileRecord>, StoreError> {
    let (t, id) = after.unwrap_or((i64::MAX, ""));
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE expire_us > ?1
               AND (create_us < ?2 OR (create_us = ?2 AND id < ?3) OR ?4)
             ORDER BY create_us DESC, id DESC LIMIT ?5"
        ))
        .map_err(StoreError::db("listing files"))?;
    let rows = stmt
        .query_map(
            params![now, t, id, after.is_none(), to_i64(limit as u64)],
            file_row,
        )
        .map_err(StoreError::db("listing files"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::db("listing files"))
}

pub fn all_files(conn: &Connection) -> Result<Vec<FileRecord>, StoreError> {
    let mut stmt = conn
        .prepare(&format!("SELECT {FILE_COLUMNS} FROM files"))
        .map_err(StoreError::db("listing files"))?;
    let rows = stmt
        .query_map([], file_row)
        .map_err(StoreError::db("listing files"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::db("listing files"))
}

pub fn expired_files(conn: &Connection, now: i64) -> Result<Vec<FileRecord>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE expire_us <= ?1"
        ))
        .map_err(StoreError::db("finding expired files"))?;
    let rows = stmt
        .query_map(params![now], file_row)
        .map_err(StoreError::db("finding expired files"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::db("finding expired files"))
}

pub fn insert_file(conn: &Connection, f: &FileRecord) -> Result<(), StoreError> {
    conn.execute(
        &format!("INSERT INTO files ({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            f.id,
            f.blob,
            f.display_name,
            f.mime_type,
            to_i64(f.size_bytes),
            f.sha256_hex,
            f.create_time_us,
            f.update_time_us,
            f.expire_time_us
        ],
    )
    .map(drop)
    .map_err(StoreError::db("recording a file"))
}

pub fn delete_file(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    conn.execute("DELETE FROM files WHERE id = ?1", params![id])
        .map(|n| n > 0)
        .map_err(StoreError::db("deleting a file"))
}

/// Bytes held by unexpired files plus bytes reserved by open uploads.
pub fn used_bytes(conn: &Connection, now: i64) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT (SELECT COALESCE(SUM(size_bytes), 0) FROM files WHERE expire_us > ?1)
              + (SELECT COALESCE(SUM(size_bytes), 0) FROM uploads)",
        params![now],
        |r| r.get::<_, i64>(0),
    )
    .map(to_u64)
    .map_err(StoreError::db("computing the storage in use"))
}

const UPLOAD_COLUMNS: &str =
    "upload_id, file_id, display_name, mime_type, size_bytes, received, create_us, update_us";

fn upload_row(r: &Row<'_>) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        upload_id: r.get(0)?,
        file_id: r.get(1)?,
        display_name: r.get(2)?,
        mime_type: r.get(3)?,
        size_bytes: to_u64(r.get(4)?),
        received: to_u64(r.get(5)?),
        create_us: r.get(6)?,
        update_us: r.get(7)?,
    })
}

pub fn upload(conn: &Connection, upload_id: &str) -> Result<Option<UploadRow>, StoreError> {
    conn.query_row(
        &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?1"),
        params![upload_id],
        upload_row,
    )
    .optional()
    .map_err(StoreError::db("reading an upload"))
}

pub fn upload_for_file(conn: &Connection, file_id: &str) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT 1 FROM uploads WHERE file_id = ?1",
        params![file_id],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(StoreError::db("reading an upload"))
}

pub fn all_uploads(conn: &Connection) -> Result<Vec<UploadRow>, StoreError> {
    let mut stmt = conn
        .prepare(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads"))
        .map_err(StoreError::db("listing uploads"))?;
    let rows = stmt
        .query_map([], upload_row)
        .map_err(StoreError::db("listing uploads"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::db("listing uploads"))
}

pub fn insert_upload(conn: &Connection, u: &UploadRow) -> Result<(), StoreError> {
    conn.execute(
        &format!("INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            u.upload_id,
            u.file_id,
            u.display_name,
            u.mime_type,
            to_i64(u.size_bytes),
            to_i64(u.received),
            u.create_us,
            u.update_us
        ],
    )
    .map(drop)
    .map_err(StoreError::db("recording an upload"))
}

pub fn set_received(
    conn: &Connection,
    upload_id: &str,
    received: u64,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE uploads SET received = ?2, update_us = ?3 WHERE upload_id = ?1",
        params![upload_id, to_i64(received), now],
    )
    .map(drop)
    .map_err(StoreError::db("recording upload progress"))
}

pub fn delete_upload(conn: &Connection, upload_id: &str) -> Result<bool, StoreError> {
    conn.execute(
        "DELETE FROM uploads WHERE upload_id = ?1",
        params![upload_id],
    )
    .map(|n| n > 0)
    .map_err(StoreError::db("deleting an upload"))
}

/// Records the finished file and closes its upload, in one transaction.
pub fn complete_upload(
    conn: &mut Connection,
    upload_id: &str,
    file: &FileRecord,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction()
        .map_err(StoreError::db("finalizing an upload"))?;
    insert_file(&tx, file)?;
    delete_upload(&tx, upload_id)?;
    tx.commit().map_err(StoreError::db("finalizing an upload"))
}
