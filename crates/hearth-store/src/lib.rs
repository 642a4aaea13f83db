//! Durable state for hearth: the files of the Files API.
//!
//! Metadata lives in SQLite (WAL, full syncs), bytes in `<dir>/blobs/`, and
//! uploads in progress in `<dir>/uploads/<upload_id>.part`. A finished upload
//! is hashed and checked, fsynced, renamed into `blobs/`, the directory
//! fsynced, and only then recorded: a crash at any moment leaves no half file
//! visible and loses no file whose upload was answered. [`Store::open`]
//! repairs whatever a crash left behind.
//!
//! The API is synchronous and thread-safe (`Store: Send + Sync`); async
//! callers run it on a blocking thread.

mod db;
mod error;
mod fsx;
pub mod mime;
pub mod names;
mod recover;
mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

pub use error::StoreError;
pub use store::Store;

/// 2 GiB: the Files API's per-file limit.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// 20 GiB: the Files API's per-project limit.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 20 * 1024 * 1024 * 1024;
/// Files live 48 hours, as on Google's service.
pub const DEFAULT_TTL: Duration = Duration::from_secs(48 * 3600);
/// An upload without activity for an hour is abandoned.
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where and how files are kept.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store's directory (created if missing).
    pub dir: PathBuf,
    /// Lifetime of a new file.
    pub default_ttl: Duration,
    pub max_file_bytes: u64,
    /// Bytes of unexpired files plus bytes reserved by open uploads.
    pub max_total_bytes: u64,
    /// An upload with no activity for this long is deleted by the sweep.
    pub upload_timeout: Duration,
    pub clock: Clock,
}

impl StoreConfig {
    /// The defaults (48 h, 2 GiB per file, 20 GiB in all, 1 h) in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            dir: dir.into(),
            default_ttl: DEFAULT_TTL,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
            clock: Clock::System,
        }
    }
}

/// The store's notion of now, in microseconds since the Unix epoch.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// A clock that moves only when told to (tests).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn now_us(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }
}

/// A stored, finished file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The id in `files/<id>`.
    pub id: String,
    pub display_name: Option<String>,
    /// As declared by the uploader (or detected when none was declared).
    pub mime_type: String,
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256_hex: String,
    pub create_time_us: i64,
    pub update_time_us: i64,
    pub expire_time_us: i64,
    /// The blob's file name under `blobs/`.
    pub(crate) blob: String,
}

impl FileRecord {
    /// `files/<id>`.
    pub fn name(&self) -> String {
        format!("files/{}", self.id)
    }

    /// The File resource's `sha256Hash` as Google writes it: the base64
    /// encoding of the lowercase hex digest (88 characters).
    pub fn sha256_hash(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.sha256_hex.as_bytes())
    }
}

/// What an upload declares when it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewUpload {
    /// `files/<id>` or `<id>` chosen by the client; generated when absent.
    pub name: Option<String>,
    pub display_name: Option<String>,
    /// Detected from the bytes at the end when absent.
    pub mime_type: Option<String>,
    pub size_bytes: u64,
}

/// An open upload: `upload_id` is its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTicket {
    pub upload_id: String,
    pub file_id: String,
}

/// Where an open upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadStatus {
    pub received: u64,
    pub size_bytes: u64,
}

/// One chunk of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Must equal the bytes received so far.
    pub offset: u64,
    /// The chunk's length when known in advance (Content-Length); checked
    /// against the declared size before anything is written.
    pub length: Option<u64>,
    /// The last chunk: the upload must then be complete.
    pub finalize: bool,
}

/// The answer to a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    Active { received: u64 },
    Final(FileRecord),
}

/// One page of `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePage {
    pub files: Vec<FileRecord>,
    pub next_page_token: Option<String>,
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub expired_files: usize,
    pub abandoned_uploads: usize,
}

/// What opening repaired after an unclean stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Temporary and part files without an upload, deleted.
    pub stray_temp_files: usize,
    /// Blobs without a record, deleted.
    pub orphan_blobs: usize,
    /// Records whose blob was missing, deleted.
    pub missing_blobs: usize,
    /// Uploads whose part file was gone, closed.
    pub lost_uploads: usize,
    /// Uploads that were renamed into place but not yet recorded, completed.
    pub completed_uploads: usize,
    /// Part files cut back to their last acknowledged chunk.
    pub truncated_parts: usize,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}
