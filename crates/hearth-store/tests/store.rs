//! The store through its public API: uploads, offsets and sizes, content
//! checks, names, limits, pages and concurrency.

mod support;

use std::fs;
use std::io::Read;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use hearth_store::{Appended, Chunk, NewUpload, Store, StoreError};
use support::*;

#[test]
fn round_trip() {
    let env = Env::new();
    let store = env.open();
    let t = store
        .start_upload(NewUpload {
            display_name: Some("greeting".into()),
            ..new_upload("text/plain", 5)
        })
        .expect("start");
    assert_eq!(t.upload_id.len(), 64, "a 256-bit upload id");
    let Appended::Final(f) = store
        .append_bytes(&t.upload_id, 0, b"hello", true)
        .expect("append")
    else {
        panic!("not final")
    };
    assert_eq!(f.name(), format!("files/{}", t.file_id));
    assert_eq!(f.id.len(), 12);
    assert!(f
        .id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(f.size_bytes, 5);
    assert_eq!(f.mime_type, "text/plain");
    assert_eq!(f.display_name.as_deref(), Some("greeting"));
    assert_eq!(
        f.sha256_hex,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(f.sha256_hash().len(), 88, "base64 of the 64 hex characters");
    assert_eq!(f.create_time_us, T0);
    assert_eq!(f.expire_time_us, T0 + 48 * 3600 * 1_000_000);
    assert_eq!(store.get(&f.name()).expect("get"), f);
    assert_eq!(store.get(&f.id).expect("get by id"), f);
    assert_eq!(store.read(&f.name()).expect("read").1, b"hello");
    assert_eq!(store.list(None, None).expect("list").files, vec![f.clone()]);
    assert!(
        matches!(
            store.upload_status(&t.upload_id),
            Err(StoreError::UploadNotFound)
        ),
        "a finalized upload is closed"
    );
    store.delete(&f.name()).expect("delete");
    assert!(matches!(store.get(&f.name()), Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.delete(&f.name()),
        Err(StoreError::NotFound(_))
    ));
    assert!(
        names_in(&env.root().join("blobs")).is_empty(),
        "bytes removed"
    );
}

#[test]
fn twenty_megabytes_in_8_mib_chunks() {
    let env = Env::new();
    let store = env.open();
    let data = noise(20 * 1000 * 1000, 7);
    let t = store
        .start_upload(new_upload("application/octet-stream", data.len()))
        .expect("start");
    let chunks: Vec<&[u8]> = data.chunks(8 * MIB).collect();
    assert_eq!(chunks.len(), 3);
    let mut offset = 0u64;
    let mut last = None;
    for (i, c) in chunks.iter().enumerate() {
        let fin = i + 1 == chunks.len();
        match store
            .append_bytes(&t.upload_id, offset, c, fin)
            .expect("chunk")
        {
            Appended::Active { received } => {
                offset += c.len() as u64;
                assert_eq!(received, offset);
                assert_eq!(
                    store.upload_status(&t.upload_id).expect("status").received,
                    offset
                );
            }
            Appended::Final(f) => last = Some(f),
        }
    }
    let f = last.expect("final");
    assert_eq!(f.size_bytes, data.len() as u64);
    assert_eq!(f.sha256_hex, sha_hex(&data));
    let (_, back) = store.read(&f.id).expect("read");
    assert!(back == data, "bytes read back equal the upload");
}

#[test]
fn offsets_and_sizes_are_checked() {
    let env = Env::new();
    let store = env.open();
    let t = store
        .start_upload(new_upload("text/plain", 10))
        .expect("start");
    let id = &t.upload_id;
    let err = store
        .append_bytes(id, 3, b"abc", false)
        .expect_err("offset");
    assert!(
        matches!(
            err,
            StoreError::OffsetMismatch {
                given: 3,
                expected: 0
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("must start at offset 0"), "{err}");
    store
        .append_bytes(id, 0, b"abcd", false)
        .expect("first chunk");
    let err = store
        .append_bytes(id, 0, b"abcd", false)
        .expect_err("replayed chunk");
    assert!(matches!(
        err,
        StoreError::OffsetMismatch {
            given: 0,
            expected: 4
        }
    ));
    let err = store
        .append_bytes(id, 4, b"0123456789", false)
        .expect_err("past the size");
    assert!(
        matches!(
            err,
            StoreError::SizeMismatch {
                declared: 10,
                received: 14
            }
        ),
        "{err}"
    );
    let err = store
        .append_bytes(id, 4, b"ef", true)
        .expect_err("short finalize");
    assert!(
        matches!(
            err,
            StoreError::SizeMismatch {
                declared: 10,
                received: 6
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.upload_status(id).expect("status").received,
        4,
        "refused chunks wrote nothing"
    );
}

#[test]
fn chunks_of_unknown_length_are_checked_as_they_arrive() {
    let env = Env::new();
    let store = env.open();
    let t = store
        .start_upload(new_upload("text/plain", 10))
        .expect("start");
    let id = &t.upload_id;
    store
        .append_bytes(id, 0, b"abcd", false)
        .expect("first chunk");
    // Too many bytes are undone after the fact.
    let unknown = |finalize| Chunk {
        offset: 4,
        length: None,
        finalize,
    };
    let err = store
        .append(id, unknown(false), &mut &b"0123456789"[..])
        .expect_err("overflow");
    assert!(
        matches!(err, StoreError::TooManyBytes { declared: 10 }),
        "{err}"
    );
    assert_eq!(store.upload_status(id).expect("status").received, 4);
    let err = store
        .append(id, unknown(true), &mut &b"ef"[..])
        .expect_err("short");
    assert!(matches!(
        err,
        StoreError::SizeMismatch {
            declared: 10,
            received: 6
        }
    ));
    let Appended::Final(f) = store
        .append(
            id,
            Chunk {
                offset: 6,
                length: None,
                finalize: true,
            },
            &mut &b"ghij"[..],
        )
        .expect("the rest")
    else {
        panic!("not final")
    };
    assert_eq!(store.read(&f.id).expect("read").1, b"abcdefghij");
}

/// A reader that fails half-way, like a client that hangs up.
struct Broken(usize);

impl Read for Broken {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            ));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_chunk_cut_short_is_undone() {
    let env = Env::new();
    let store = env.open();
    let t = store
        .start_upload(new_upload("text/plain", 100))
        .expect("start");
    let chunk = Chunk {
        offset: 0,
        length: Some(100),
        finalize: true,
    };
    let err = store
        .append(&t.upload_id, chunk, &mut Broken(40))
        .expect_err("broken body");
    assert!(matches!(err, StoreError::Body(_)), "{err}");
    assert_eq!(
        store.upload_status(&t.upload_id).expect("status").received,
        0
    );
    let part = env
        .root()
        .join("uploads")
        .join(format!("{}.part", t.upload_id));
    assert_eq!(
        fs::metadata(part).expect("part").len(),
        0,
        "no partial chunk left"
    );
    store
        .append_bytes(&t.upload_id, 0, &[b'y'; 100], true)
        .expect("the retry succeeds");
}

#[test]
fn media_types_are_checked_against_the_content() {
    let env = Env::new();
    let store = env.open();
    let t = store
        .start_upload(new_upload("image/png", 11))
        .expect("start");
    let err = store
        .append_bytes(&t.upload_id, 0, b"hello world", true)
        .expect_err("not a PNG");
    assert!(matches!(err, StoreError::MimeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("image/png"), "{err}");
    assert!(matches!(
        store.upload_status(&t.upload_id),
        Err(StoreError::UploadNotFound)
    ));
    assert!(names_in(&env.root().join("uploads")).is_empty());

    assert_eq!(upload(&store, PNG, "image/png").mime_type, "image/png");
    let pdf = upload(&store, b"%PDF-1.7\n%stuff", "application/pdf");
    assert_eq!(pdf.mime_type, "application/pdf");
    let wav = upload(&store, b"RIFF\x24\0\0\0WAVEfmt ", "audio/wav");
    assert_eq!(wav.mime_type, "audio/wav", "stored as declared");
    let t = store
        .start_upload(new_upload("audio/mp3", 5))
        .expect("start");
    let err = store
        .append_bytes(&t.upload_id, 0, b"%PDF-", true)
        .expect_err("a PDF is no MP3");
    assert!(err.to_string().contains("application/pdf"), "{err}");

    // Undeclared types are detected.
    let t = store
        .start_upload(NewUpload {
            size_bytes: PNG.len() as u64,
            ..NewUpload::default()
        })
        .expect("start");
    let Appended::Final(f) = store.append_bytes(&t.upload_id, 0, PNG, true).expect("png") else {
        panic!("not final")
    };
    assert_eq!(f.mime_type, "image/png");
}

#[test]
fn concurrent_uploads_from_threads() {
    let env = Env::new();
    let store = Arc::new(env.open());
    let handles: Vec<_> = (0..8u64)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let data = noise(MIB + usize::try_from(i).expect("small") * 1000, i);
                let t = store
                    .start_upload(new_upload("application/octet-stream", data.len()))
                    .expect("start");
                let mut offset = 0;
                let mut last = None;
                for c in data.chunks(256 * 1024) {
                    let fin = offset + c.len() == data.len();
                    match store
                        .append_bytes(&t.upload_id, offset as u64, c, fin)
                        .expect("chunk")
                    {
                        Appended::Final(f) => last = Some(f),
                        Appended::Active { .. } => {}
                    }
                    offset += c.len();
                }
                (last.expect("final"), sha_hex(&data))
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        let (f, sha) = h.join().expect("thread");
        assert_eq!(f.sha256_hex, sha);
        assert_eq!(store.read(&f.id).expect("read").0.sha256_hex, sha);
        ids.insert(f.id);
    }
    assert_eq!(ids.len(), 8);
    assert_eq!(store.list(Some(100), None).expect("list").files.len(), 8);
}

/// A body that waits for a signal before giving its bytes.
struct Gated(mpsc::Receiver<()>, bool);

impl Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.1 {
            return Ok(0);
        }
        self.0.recv().map_err(std::io::Error::other)?;
        self.1 = true;
        buf[..4].copy_from_slice(b"abcd");
        Ok(4)
    }
}

#[test]
fn two_writers_on_one_upload_are_refused() {
    let env = Env::new();
    let store = Arc::new(env.open());
    let t = store
        .start_upload(new_upload("text/plain", 8))
        .expect("start");
    let (tx, rx) = mpsc::channel();
    let writer = {
        let (store, id) = (store.clone(), t.upload_id.clone());
        std::thread::spawn(move || {
            let chunk = Chunk {
                offset: 0,
                length: Some(4),
                finalize: false,
            };
            store.append(&id, chunk, &mut Gated(rx, false))
        })
    };
    // Until the writer holds the upload, a chunk at a wrong offset is refused
    // for its offset (writing nothing); then it is refused as busy.
    let mut refused = false;
    for _ in 0..1000 {
        match store.append_bytes(&t.upload_id, 99, b"wxyz", false) {
            Err(StoreError::Busy) => {
                refused = true;
                break;
            }
            Err(StoreError::OffsetMismatch { .. }) => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused, "the second writer was refused as busy");
    tx.send(()).expect("release");
    assert_eq!(
        writer.join().expect("thread").expect("first writer"),
        Appended::Active { received: 4 }
    );
    store
        .append_bytes(&t.upload_id, 4, b"efgh", true)
        .expect("then the next chunk");
}

#[test]
fn traversal_attempts_and_oversized_names_are_refused() {
    let env = Env::new();
    let store = env.open();
    let long = "a".repeat(41);
    for name in [
        "../x",
        "a/b",
        "files/../../etc/passwd",
        "UPPER",
        "files/a_b",
        "-a",
        long.as_str(),
        "files/",
        "..",
    ] {
        let err = store
            .start_upload(NewUpload {
                name: Some(name.into()),
                ..new_upload("text/plain", 1)
            })
            .expect_err(name);
        assert!(
            matches!(err, StoreError::InvalidArgument(_)),
            "{name}: {err}"
        );
        assert!(
            matches!(store.get(name), Err(StoreError::InvalidArgument(_))),
            "{name}"
        );
        assert!(
            matches!(store.delete(name), Err(StoreError::InvalidArgument(_))),
            "{name}"
        );
    }
    assert!(store
        .start_upload(NewUpload {
            name: Some("a".repeat(40)),
            ..new_upload("text/plain", 1)
        })
        .is_ok());
    let err = store
        .start_upload(NewUpload {
            display_name: Some("x".repeat(513)),
            ..new_upload("text/plain", 1)
        })
        .expect_err("display name too long");
    assert!(err.to_string().contains("512"), "{err}");
    for bad in ["../../etc/passwd", "/tmp/x", "..\\..\\x"] {
        assert!(matches!(
            store.upload_status(bad),
            Err(StoreError::UploadNotFound)
        ));
        assert!(matches!(
            store.append_bytes(bad, 0, b"x", true),
            Err(StoreError::UploadNotFound)
        ));
    }
    // A display name that looks like a path is metadata only.
    let t = store
        .start_upload(NewUpload {
            display_name: Some("../../escape".into()),
            ..new_upload("text/plain", 2)
        })
        .expect("start");
    store
        .append_bytes(&t.upload_id, 0, b"ok", true)
        .expect("upload");
    assert_eq!(
        store.get(&t.file_id).expect("get").display_name.as_deref(),
        Some("../../escape")
    );
    assert_eq!(
        names_in(env.dir.path()),
        vec!["files".to_string()],
        "nothing written outside the store"
    );
    assert!(!env.root().join("escape").exists());
}

#[test]
fn client_chosen_names_are_unique() {
    let env = Env::new();
    let store = env.open();
    let t = store
        .start_upload(NewUpload {
            name: Some("files/my-notes-1".into()),
            ..new_upload("text/plain", 2)
        })
        .expect("start");
    assert_eq!(t.file_id, "my-notes-1");
    let again = || {
        store.start_upload(NewUpload {
            name: Some("my-notes-1".into()),
            ..new_upload("text/plain", 2)
        })
    };
    assert!(
        matches!(again(), Err(StoreError::AlreadyExists(_))),
        "reserved by the open upload"
    );
    store
        .append_bytes(&t.upload_id, 0, b"hi", true)
        .expect("finish");
    assert!(matches!(again(), Err(StoreError::AlreadyExists(_))));
    store.delete("files/my-notes-1").expect("delete");
    assert!(again().is_ok());
}

#[test]
fn limits_per_file_and_in_total() {
    let env = Env::new();
    let mut config = env.config();
    config.max_file_bytes = 100;
    config.max_total_bytes = 150;
    let store = Store::open(config).expect("open");
    let err = store
        .start_upload(new_upload("text/plain", 101))
        .expect_err("too large");
    assert!(matches!(err, StoreError::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("100 bytes"), "{err}");
    let a = upload(&store, &[b'a'; 100], "text/plain");
    let open = store
        .start_upload(new_upload("text/plain", 40))
        .expect("fits");
    let err = store
        .start_upload(new_upload("text/plain", 11))
        .expect_err("open uploads reserve");
    assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err}");
    assert!(err.to_string().contains("150"), "{err}");
    store.cancel_upload(&open.upload_id).expect("cancel");
    store
        .start_upload(new_upload("text/plain", 50))
        .expect("freed by the cancel");
    store.delete(&a.id).expect("delete");
    store
        .start_upload(new_upload("text/plain", 100))
        .expect("freed by the delete");
}

#[test]
fn list_pages_newest_first() {
    let env = Env::new();
    let store = env.open();
    let mut made = Vec::new();
    for i in 0..25 {
        made.push(upload(&store, format!("file {i}").as_bytes(), "text/plain").id);
        if i % 3 == 0 {
            env.advance(Duration::from_millis(1)); // some share a create time
        }
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list(Some(10), token.as_deref()).expect("page");
        pages += 1;
        assert!(page.files.len() <= 10);
        seen.extend(page.files.iter().map(|f| f.id.clone()));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let times: Vec<i64> = seen
        .iter()
        .map(|id| store.get(id).expect("get").create_time_us)
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let mut sorted = seen.clone();
    sorted.sort();
    made.sort();
    assert_eq!(sorted, made, "every file exactly once");
    assert_eq!(store.list(None, None).expect("default").files.len(), 10);
    assert_eq!(
        store.list(Some(1000), None).expect("capped").files.len(),
        25
    );
    assert!(matches!(
        store.list(None, Some("garbage!")),
        Err(StoreError::InvalidArgument(_))
    ));
}
