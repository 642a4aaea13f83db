//! Repair at open: whatever a crash (kill -9, power cut) left between the
//! disk and the database is brought back to a consistent state.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use rusqlite::Connection;

use crate::db::{self, UploadRow};
use crate::store::examine;
use crate::{fsx, names, Recovery, Store, StoreError};

impl Store {
    /// Runs once, before the store serves anyone.
    pub(crate) fn recover(&self) -> Result<Recovery, StoreError> {
        let mut rec = Recovery::default();
        let mut conn = self.conn();
        let mut live_parts = HashSet::new();
        for u in db::all_uploads(&conn)? {
            if self.recover_upload(&mut conn, &u, &mut rec)? {
                live_parts.insert(format!("{}.part", u.upload_id));
            }
        }
        // Part and temporary files that no upload owns.
        rec.stray_temp_files = remove_unlisted(&self.uploads, &live_parts)?;
        // Records whose bytes are gone cannot be served: drop them.
        let mut blobs = HashSet::new();
        for f in db::all_files(&conn)? {
            if self.blob_path(&f.blob).is_file() {
                blobs.insert(f.blob);
            } else {
                tracing::warn!(file = %f.id, "the bytes of files/{} are missing; removing its record", f.id);
                db::delete_file(&conn, &f.id)?;
                rec.missing_blobs += 1;
            }
        }
        // Blobs without a record: a delete or an upload cut short.
        rec.orphan_blobs = remove_unlisted(&self.blobs, &blobs)?;
        Ok(rec)
    }

    /// Returns whether the upload stays open (its part file is kept).
    fn recover_upload(
        &self,
        conn: &mut Connection,
        u: &UploadRow,
        rec: &mut Recovery,
    ) -> Result<bool, StoreError> {
        if !names::is_upload_id(&u.upload_id) {
            db::delete_upload(conn, &u.upload_id)?;
            rec.lost_uploads += 1;
            return Ok(false);
        }
        let part = self.part_path(&u.upload_id);
        match fs::metadata(&part) {
            Ok(meta) => {
                let len = meta.len();
                if len > u.received {
                    // Bytes of a chunk that was never acknowledged.
                    OpenOptions::new()
                        .write(true)
                        .open(&part)
                        .and_then(|f| f.set_len(u.received).and_then(|()| f.sync_all()))
                        .map_err(StoreError::io("truncating an interrupted chunk"))?;
                    rec.truncated_parts += 1;
                } else if len < u.received {
                    db::set_received(conn, &u.upload_id, len, u.update_us)?;
                    rec.truncated_parts += 1;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.complete_renamed(conn, u)? {
                    rec.completed_uploads += 1;
                } else {
                    db::delete_upload(conn, &u.upload_id)?;
                    rec.lost_uploads += 1;
                }
                Ok(false)
            }
            Err(e) => Err(StoreError::Io {
                op: "inspecting an upload",
                source: e,
            }),
        }
    }

    /// An upload whose bytes were moved into `blobs/` just before a crash,
    /// before its record was written: the record is written now.
    fn complete_renamed(&self, conn: &mut Connection, u: &UploadRow) -> Result<bool, StoreError> {
        let blob = self.blob_path(&u.upload_id);
        let complete = fs::metadata(&blob).is_ok_and(|m| m.is_file() && m.len() == u.size_bytes);
        if !complete || db::any_file(conn, &u.file_id)?.is_some() {
            return Ok(false);
        }
        let Ok((sha, mime)) = examine(&blob, u.mime_type.as_deref()) else {
            return Ok(false);
        };
        let record = self.record_for(u, sha, mime);
        db::complete_upload(conn, &u.upload_id, &record)?;
        Ok(true)
    }
}

/// Removes every plain file in `dir` whose name is not in `keep`.
fn remove_unlisted(dir: &Path, keep: &HashSet<String>) -> Result<usize, StoreError> {
    let mut removed = 0;
    let entries = fs::read_dir(dir).map_err(StoreError::io("listing the store"))?;
    for entry in entries {
        let entry = entry.map_err(StoreError::io("listing the store"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            fsx::remove_if_exists(&entry.path())?;
            removed += 1;
        } else {
            tracing::warn!(entry = %name, "unexpected entry in the files store, left alone");
        }
    }
    Ok(removed)
}
