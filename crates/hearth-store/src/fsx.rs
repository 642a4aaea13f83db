//! File-system steps with the durability the store promises.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::mime::SNIFF_BYTES;
use crate::StoreError;

const BUF: usize = 256 * 1024;

/// Makes a rename or creation inside `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io("syncing a directory"))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Removes a file; one that is already gone is fine.
pub fn remove_if_exists(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Io {
            op: "removing a file",
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The lowercase hex SHA-256 of a file and its first bytes.
pub fn hash_file(path: &Path) -> Result<(String, Vec<u8>), StoreError> {
    let mut f = File::open(path).map_err(StoreError::io("opening an upload to hash it"))?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut buf = vec![0u8; BUF];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(StoreError::io("reading an upload to hash it"))?;
        if n == 0 {
            break;
        }
        if head.len() < SNIFF_BYTES {
            let take = n.min(SNIFF_BYTES - head.len());
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
    }
    Ok((crate::hex(&hasher.finalize()), head))
}

/// How copying a chunk ended.
pub enum Copied {
    /// All of the body, this many bytes.
    Done(u64),
    /// The body held more than `room` bytes.
    Overflow,
}

/// Copies `body` to the end of `out`, accepting at most `room` bytes.
/// Read failures are the client's (`StoreError::Body`), write failures ours.
pub fn copy_chunk(out: &mut File, body: &mut dyn Read, room: u64) -> Result<Copied, StoreError> {
    let mut buf = vec![0u8; BUF];
    let mut total: u64 = 0;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(Copied::Done(total)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::Body(e)),
        };
        total += n as u64;
        if total > room {
            return Ok(Copied::Overflow);
        }
        out.write_all(&buf[..n])
            .map_err(StoreError::io("writing an upload chunk"))?;
    }
}
