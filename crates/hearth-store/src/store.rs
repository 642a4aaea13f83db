//! The local store: uploads, files, expiry.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use rusqlite::Connection;

use crate::db::{self, UploadRow};
use crate::fsx::{self, Copied};
use crate::names::{self, parse_file_id};
use crate::{
    mime, Appended, Chunk, FilePage, FileRecord, NewUpload, Recovery, StoreConfig, StoreError,
    SweepReport, UploadStatus, UploadTicket,
};

const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 100;

/// Files on local disk with SQLite metadata. Thread-safe.
pub struct Store {
    pub(crate) config: StoreConfig,
    db: Mutex<Connection>,
    /// Uploads a request is writing to right now.
    busy: Mutex<HashSet<String>>,
    pub(crate) blobs: PathBuf,
    pub(crate) uploads: PathBuf,
    recovered: Recovery,
}

/// Holds an upload for one writer; released on drop.
pub(crate) struct BusyGuard<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        lock(self.set).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves SQLite consistent (open transactions roll
    // back on drop), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens the store in `config.dir` (creating it), repairs what an unclean
    /// stop left behind, and sweeps expired files.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let blobs = config.dir.join("blobs");
        let uploads = config.dir.join("uploads");
        for d in [&config.dir, &blobs, &uploads] {
            fs::create_dir_all(d).map_err(StoreError::io("creating the store's directories"))?;
        }
        let conn = db::open(&config.dir.join("files.sqlite3"))?;
        let mut store = Store {
            config,
            db: Mutex::new(conn),
            busy: Mutex::new(HashSet::new()),
            blobs,
            uploads,
            recovered: Recovery::default(),
        };
        store.recovered = store.recover()?;
        if store.recovered != Recovery::default() {
            tracing::warn!(recovery = ?store.recovered, "files store repaired after an unclean stop");
        }
        store.sweep()?;
        Ok(store)
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// What `open` repaired.
    pub fn recovery(&self) -> Recovery {
        self.recovered
    }

    pub(crate) fn now(&self) -> i64 {
        self.config.clock.now_us()
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        lock(&self.db)
    }

    pub(crate) fn blob_path(&self, blob: &str) -> PathBuf {
        self.blobs.join(blob)
    }

    pub(crate) fn part_path(&self, upload_id: &str) -> PathBuf {
        self.uploads.join(format!("{upload_id}.part"))
    }

    fn claim_busy(&self, upload_id: &str) -> Result<BusyGuard<'_>, StoreError> {
        if !lock(&self.busy).insert(upload_id.to_string()) {
            return Err(StoreError::Busy);
        }
        Ok(BusyGuard {
            set: &self.busy,
            id: upload_id.to_string(),
        })
    }

    /// Opens an upload session; its bytes follow through [`Store::append`].
    pub fn start_upload(&self, new: NewUpload) -> Result<UploadTicket, StoreError> {
        let chosen = new.name.as_deref().map(parse_file_id).transpose()?;
        if let Some(d) = &new.display_name {
            names::check_display_name(d)?;
        }
        if let Some(m) = &new.mime_type {
            names::check_mime_type(m)?;
        }
        let max = self.config.max_file_bytes;
        if new.size_bytes > max {
            return Err(StoreError::TooLarge(format!(
                "The file is {} bytes; the limit is {max} bytes per file.",
                new.size_bytes
            )));
        }
        let upload_id = names::generate_upload_id()?;
        let part = self.part_path(&upload_id);
        File::create_new(&part).map_err(StoreError::io("creating an upload"))?;
        fsx::sync_dir(&self.uploads)?;
        let result = self.record_upload(&upload_id, chosen, new);
        if result.is_err() {
            fsx::remove_if_exists(&part)?;
        }
        result
    }

    fn record_upload(
        &self,
        upload_id: &str,
        chosen: Option<String>,
        new: NewUpload,
    ) -> Result<UploadTicket, StoreError> {
        let conn = self.conn();
        let now = self.now();
        let file_id = match chosen {
            Some(id) => {
                self.claim_file_id(&conn, &id, now)?;
                id
            }
            None => fresh_file_id(&conn)?,
        };
        let used = db::used_bytes(&conn, now)?;
        let max = self.config.max_total_bytes;
        if used.saturating_add(new.size_bytes) > max {
            return Err(StoreError::QuotaExceeded(format!(
                "Storage quota exceeded: {used} of {max} bytes are in use and this file needs {} more. Delete files (files.delete) or wait for them to expire.",
                new.size_bytes
            )));
        }
        db::insert_upload(
            &conn,
            &UploadRow {
                upload_id: upload_id.to_string(),
                file_id: file_id.clone(),
                display_name: new.display_name,
                mime_type: new.mime_type,
                size_bytes: new.size_bytes,
                received: 0,
                create_us: now,
                update_us: now,
            },
        )?;
        Ok(UploadTicket {
            upload_id: upload_id.to_string(),
            file_id,
        })
    }

    /// A client-chosen id must be free; an expired file holding it is removed.
    fn claim_file_id(&self, conn: &Connection, id: &str, now: i64) -> Result<(), StoreError> {
        if let Some(old) = db::any_file(conn, id)? {
            if old.expire_time_us > now {
                return Err(StoreError::AlreadyExists(id.to_string()));
            }
            db::delete_file(conn, id)?;
            fsx::remove_if_exists(&self.blob_path(&old.blob))?;
        }
        if db::upload_for_file(conn, id)? {
            return Err(StoreError::AlreadyExists(id.to_string()));
        }
        Ok(())
    }

    /// An open, not abandoned upload.
    fn live_upload(&self, upload_id: &str) -> Result<UploadRow, StoreError> {
        if !names::is_upload_id(upload_id) {
            return Err(StoreError::UploadNotFound);
        }
        let row = db::upload(&self.conn(), upload_id)?.ok_or(StoreError::UploadNotFound)?;
        if self.now() - row.update_us >= micros(self.config.upload_timeout) {
            return Err(StoreError::UploadNotFound);
        }
        Ok(row)
    }

    /// Bytes received so far and the declared size.
    pub fn upload_status(&self, upload_id: &str) -> Result<UploadStatus, StoreError> {
        let row = self.live_upload(upload_id)?;
        Ok(UploadStatus {
            received: row.received,
            size_bytes: row.size_bytes,
        })
    }

    /// Adds a chunk read from `body`. The offset must equal the bytes
    /// received; the upload never grows past its declared size; the final
    /// chunk must complete it exactly. A chunk that fails part-way is undone.
    pub fn append(
        &self,
        upload_id: &str,
        chunk: Chunk,
        body: &mut dyn Read,
    ) -> Result<Appended, StoreError> {
        if !names::is_upload_id(upload_id) {
            return Err(StoreError::UploadNotFound);
        }
        let _guard = self.claim_busy(upload_id)?;
        let row = self.live_upload(upload_id)?;
        if chunk.offset != row.received {
            return Err(StoreError::OffsetMismatch {
                given: chunk.offset,
                expected: row.received,
            });
        }
        let room = row.size_bytes.saturating_sub(row.received);
        if let Some(len) = chunk.length {
            let after = row.received.saturating_add(len);
            if len > room || (chunk.finalize && len != room) {
                return Err(StoreError::SizeMismatch {
                    declared: row.size_bytes,
                    received: after,
                });
            }
        }
        let received = self.write_chunk(&row, body, room)?;
        if !chunk.finalize {
            return Ok(Appended::Active { received });
        }
        if received != row.size_bytes {
            return Err(StoreError::SizeMismatch {
                declared: row.size_bytes,
                received,
            });
        }
        self.finalize(&row).map(Appended::Final)
    }

    /// [`Store::append`] with the bytes in hand.
    pub fn append_bytes(
        &self,
        upload_id: &str,
        offset: u64,
        bytes: &[u8],
        finalize: bool,
    ) -> Result<Appended, StoreError> {
        let chunk = Chunk {
            offset,
            length: Some(bytes.len() as u64),
            finalize,
        };
        self.append(upload_id, chunk, &mut &bytes[..])
    }

    fn write_chunk(
        &self,
        row: &UploadRow,
        body: &mut dyn Read,
        room: u64,
    ) -> Result<u64, StoreError> {
        let part = self.part_path(&row.upload_id);
        let mut f = OpenOptions::new()
            .write(true)
            .open(&part)
            .map_err(StoreError::io("opening an upload"))?;
        let start = row.received;
        f.set_len(start)
            .and_then(|()| f.seek(SeekFrom::Start(start)))
            .map_err(StoreError::io("positioning an upload"))?;
        let n = match fsx::copy_chunk(&mut f, body, room) {
            Ok(Copied::Done(n)) => n,
            failed => {
                f.set_len(start)
                    .map_err(StoreError::io("undoing a failed chunk"))?;
                return Err(match failed {
                    Err(e) => e,
                    _ => StoreError::TooManyBytes {
                        declared: row.size_bytes,
                    },
                });
            }
        };
        f.sync_data()
            .map_err(StoreError::io("syncing an upload chunk"))?;
        let received = start + n;
        db::set_received(&self.conn(), &row.upload_id, received, self.now())?;
        Ok(received)
    }

    /// Hashes and checks a complete upload, moves it into `blobs/` durably,
    /// then records it.
    fn finalize(&self, row: &UploadRow) -> Result<FileRecord, StoreError> {
        let part = self.part_path(&row.upload_id);
        let (sha256_hex, mime_type) = match examine(&part, row.mime_type.as_deref()) {
            Err(e @ StoreError::MimeMismatch { .. }) => {
                self.discard_upload(&row.upload_id)?;
                return Err(e);
            }
            other => other?,
        };
        File::open(&part)
            .and_then(|f| f.sync_all())
            .map_err(StoreError::io("syncing an upload"))?;
        let blob_path = self.blob_path(&row.upload_id);
        fs::rename(&part, &blob_path).map_err(StoreError::io("moving an upload into place"))?;
        fsx::sync_dir(&self.blobs)?;
        fsx::sync_dir(&self.uploads)?;
        let record = self.record_for(row, sha256_hex, mime_type);
        if let Err(e) = db::complete_upload(&mut self.conn(), &row.upload_id, &record) {
            // Put the bytes back: the upload can be finalized again.
            let _ = fs::rename(&blob_path, &part);
            return Err(e);
        }
        Ok(record)
    }

    pub(crate) fn record_for(
        &self,
        row: &UploadRow,
        sha256_hex: String,
        mime_type: String,
    ) -> FileRecord {
        let now = self.now();
        FileRecord {
            id: row.file_id.clone(),
            display_name: row.display_name.clone(),
            mime_type,
            size_bytes: row.size_bytes,
            sha256_hex,
            create_time_us: now,
            update_time_us: now,
            expire_time_us: now.saturating_add(micros(self.config.default_ttl)),
            blob: row.upload_id.clone(),
        }
    }

    fn discard_upload(&self, upload_id: &str) -> Result<(), StoreError> {
        db::delete_upload(&self.conn(), upload_id)?;
        fsx::remove_if_exists(&self.part_path(upload_id))
    }

    /// Abandons an upload and its bytes.
    pub fn cancel_upload(&self, upload_id: &str) -> Result<(), StoreError> {
        let _guard = self.claim_busy(upload_id)?;
        self.live_upload(upload_id)?;
        self.discard_upload(upload_id)
    }

    /// A file by name (`files/<id>` or `<id>`); expired files are not found.
    pub fn get(&self, name: &str) -> Result<FileRecord, StoreError> {
        let id = parse_file_id(name)?;
        db::live_file(&self.conn(), &id, self.now())?.ok_or(StoreError::NotFound(id))
    }

    /// A file and its bytes.
    pub fn read(&self, name: &str) -> Result<(FileRecord, Vec<u8>), StoreError> {
        let rec = self.get(name)?;
        match fs::read(self.blob_path(&rec.blob)) {
            Ok(bytes) => Ok((rec, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(rec.id)),
            Err(e) => Err(StoreError::Io {
                op: "reading a file",
                source: e,
            }),
        }
    }

    /// Unexpired files, newest first. `page_size`: 10 when absent or not
    /// positive, at most 100. `page_token`: a previous page's token.
    pub fn list(
        &self,
        page_size: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<FilePage, StoreError> {
        let size = match page_size {
            Some(n) if n > 0 => usize::try_from(n)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
            _ => DEFAULT_PAGE_SIZE,
        };
        let after = page_token
            .filter(|t| !t.is_empty())
            .map(decode_token)
            .transpose()?;
        let cursor = after.as_ref().map(|(t, id)| (*t, id.as_str()));
        let mut files = db::list_files(&self.conn(), self.now(), cursor, size + 1)?;
        let next_page_token = if files.len() > size {
            files.truncate(size);
            files.last().map(encode_token)
        } else {
            None
        };
        Ok(FilePage {
            files,
            next_page_token,
        })
    }

    /// Deletes a file: its record first, then its bytes.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        let id = parse_file_id(name)?;
        let rec = {
            let conn = self.conn();
            let rec = db::live_file(&conn, &id, self.now())?.ok_or(StoreError::NotFound(id))?;
            db::delete_file(&conn, &rec.id)?;
            rec
        };
        fsx::remove_if_exists(&self.blob_path(&rec.blob))
    }

    /// Deletes expired files and uploads idle for longer than the timeout.
    pub fn sweep(&self) -> Result<SweepReport, StoreError> {
        let now = self.now();
        let expired = {
            let conn = self.conn();
            let expired = db::expired_files(&conn, now)?;
            for f in &expired {
                db::delete_file(&conn, &f.id)?;
            }
            expired
        };
        for f in &expired {
            fsx::remove_if_exists(&self.blob_path(&f.blob))?;
        }
        let cutoff = now.saturating_sub(micros(self.config.upload_timeout));
        let idle: Vec<String> = db::all_uploads(&self.conn())?
            .into_iter()
            .filter(|u| u.update_us <= cutoff)
            .map(|u| u.upload_id)
            .collect();
        let mut abandoned = 0;
        for id in idle {
            // Skip uploads a request is writing to; recheck after claiming.
            let Ok(_guard) = self.claim_busy(&id) else {
                continue;
            };
            if matches!(self.live_upload(&id), Err(StoreError::UploadNotFound)) {
                self.discard_upload(&id)?;
                abandoned += 1;
            }
        }
        Ok(SweepReport {
            expired_files: expired.len(),
            abandoned_uploads: abandoned,
        })
    }
}

/// A fresh generated id that no file or upload holds.
fn fresh_file_id(conn: &Connection) -> Result<String, StoreError> {
    for _ in 0..16 {
        let id = names::generate_file_id()?;
        if db::any_file(conn, &id)?.is_none() && !db::upload_for_file(conn, &id)? {
            return Ok(id);
        }
    }
    Err(StoreError::Io {
        op: "choosing a file id",
        source: std::io::Error::other("no free id after 16 draws"),
    })
}

/// The SHA-256 of a complete upload and its MIME type: the declared one,
/// checked against the bytes for media types, or detected when none was declared.
pub(crate) fn examine(path: &Path, declared: Option<&str>) -> Result<(String, String), StoreError> {
    let (sha, head) = fsx::hash_file(path)?;
    let mime_type = match declared {
        Some(m) => {
            mime::check_content(m, &head).map_err(|detected| StoreError::MimeMismatch {
                declared: m.to_string(),
                detected,
            })?;
            m.to_string()
        }
        None => mime::detect(&head)
            .unwrap_or("application/octet-stream")
            .to_string(),
    };
    Ok((sha, mime_type))
}

fn encode_token(f: &FileRecord) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", f.create_time_us, f.id))
}

fn decode_token(token: &str) -> Result<(i64, String), StoreError> {
    let bad = || StoreError::InvalidArgument(format!("Invalid page token: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (t, id) = text.split_once(':').ok_or_else(bad)?;
    let t = t.parse::<i64>().map_err(|_| bad())?;
    let id = parse_file_id(id).map_err(|_| bad())?;
    Ok((t, id))
}
