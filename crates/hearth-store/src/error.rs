//! The one error type of the store. Messages are meant for API clients:
//! they name the operation and never an internal path.

/// What went wrong, in terms a Files API answer can map to a status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such file (or it has expired): Google answers 403 for these.
    #[error("file {0} does not exist or has expired")]
    NotFound(String),
    /// The upload id names no open upload (never issued, finished, cancelled
    /// or abandoned).
    #[error("no open upload with this upload_id: it was never started, has already been finalized, was cancelled, or was abandoned and cleaned up")]
    UploadNotFound,
    #[error("a file named files/{0} already exists")]
    AlreadyExists(String),
    /// A malformed name, display name, MIME type or page token.
    #[error("{0}")]
    InvalidArgument(String),
    /// Larger than the per-file limit.
    #[error("{0}")]
    TooLarge(String),
    /// The configured total storage would be exceeded.
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("invalid upload offset {given}: {expected} bytes of this upload have been received, so the next chunk must start at offset {expected}")]
    OffsetMismatch { given: u64, expected: u64 },
    #[error("size mismatch: the upload declared {declared} bytes but {received} were sent")]
    SizeMismatch { declared: u64, received: u64 },
    #[error("size mismatch: more bytes were sent than the {declared} this upload declared")]
    TooManyBytes { declared: u64 },
    #[error("the uploaded bytes are not {declared} content (they look like {detected}); declare the file's real MIME type")]
    MimeMismatch { declared: String, detected: String },
    /// Two requests wrote to the same upload at once.
    #[error("another request is writing to this upload right now; wait for it, then query the upload's status")]
    Busy,
    /// Reading the client's bytes failed (connection closed mid-chunk...).
    #[error("reading the uploaded bytes failed: {0}")]
    Body(#[source] std::io::Error),
    #[error("file storage failed while {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the file database failed while {op}: {source}")]
    Db {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
        move |source| StoreError::Io { op, source }
    }

    pub(crate) fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Db { op, source }
    }

    /// True for failures of the machine rather than of the request.
    pub fn is_internal(&self) -> bool {
        matches!(self, StoreError::Io { .. } | StoreError::Db { .. })
    }
}
