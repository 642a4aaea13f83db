//! Durability: restarts, crashes at every step of an upload, expiry and
//! abandoned uploads.

mod support;

use std::fs;
use std::time::Duration;

use hearth_store::{Appended, FileRecord, NewUpload, Store, StoreError, UploadTicket};
use support::*;

#[test]
fn a_restart_keeps_every_unexpired_file() {
    let env = Env::new();
    let (a, b) = {
        let store = env.open();
        let a = upload(&store, b"first", "text/plain");
        env.advance(Duration::from_secs(1));
        (a, upload(&store, PNG, "image/png"))
    };
    env.advance(Duration::from_secs(60));
    let store = env.open();
    assert_eq!(
        store.recovery(),
        Default::default(),
        "a clean stop needs no repair"
    );
    assert_eq!(store.get(&a.id).expect("a"), a);
    assert_eq!(store.read(&b.id).expect("b").1, PNG);
    assert_eq!(store.list(None, None).expect("list").files, vec![b, a]);
}

/// What a crash can leave: a finished file, an upload with an
/// unacknowledged tail, an upload moved into blobs/ before it was complete,
/// a record whose blob vanished, and stray files. Returns (finished file,
/// interrupted upload, lost upload, file without bytes).
fn leave_a_crashed_store(
    env: &Env,
    data: &[u8],
) -> (FileRecord, UploadTicket, UploadTicket, FileRecord) {
    let root = env.root();
    let (kept, resumed, renamed, lost_blob) = {
        let store = env.open();
        let kept = upload(&store, data, "application/octet-stream");
        // An upload with one acknowledged chunk, then half of an unacknowledged one.
        let resumed = store
            .start_upload(new_upload("text/plain", 2 * MIB))
            .expect("start");
        store
            .append_bytes(&resumed.upload_id, 0, &data[..MIB], false)
            .expect("chunk");
        // Bytes moved into blobs/ but the record never written.
        let renamed = store
            .start_upload(new_upload("text/plain", 2000))
            .expect("start");
        store
            .append_bytes(&renamed.upload_id, 0, &data[..1000], false)
            .expect("chunk");
        // A file whose bytes vanished.
        let lost_blob = upload(&store, b"gone", "text/plain");
        (kept, resumed, renamed, lost_blob)
    };
    let uploads = root.join("uploads");
    let blobs = root.join("blobs");
    let part = uploads.join(format!("{}.part", resumed.upload_id));
    let mut bytes = fs::read(&part).expect("part");
    bytes.extend_from_slice(&data[MIB..MIB + 4096]);
    fs::write(&part, bytes).expect("unacknowledged bytes");
    fs::rename(
        uploads.join(format!("{}.part", renamed.upload_id)),
        blobs.join(&renamed.upload_id),
    )
    .expect("simulate the rename");
    let gone = names_in(&blobs)
        .into_iter()
        .find(|n| fs::read(blobs.join(n)).is_ok_and(|b| b == b"gone"))
        .expect("the blob of the lost file");
    fs::remove_file(blobs.join(gone)).expect("lose the blob");
    fs::write(uploads.join("stray.tmp"), b"junk").expect("stray");
    fs::write(uploads.join(format!("{}.part", "ab".repeat(32))), b"junk")
        .expect("part without a row");
    fs::write(blobs.join("0123abcd"), b"orphan").expect("orphan blob");
    (kept, resumed, renamed, lost_blob)
}

#[test]
fn a_crash_at_any_step_leaves_a_clean_store() {
    let env = Env::new();
    let root = env.root();
    let data = noise(3 * MIB, 1);
    let (kept, resumed, renamed, lost_blob) = leave_a_crashed_store(&env, &data);
    let (uploads, blobs) = (root.join("uploads"), root.join("blobs"));

    let store = env.open();
    let r = store.recovery();
    assert_eq!(r.stray_temp_files, 2, "{r:?}");
    assert_eq!(
        r.orphan_blobs, 2,
        "the stray and the incomplete renamed upload: {r:?}"
    );
    assert_eq!(r.missing_blobs, 1, "{r:?}");
    assert_eq!(r.truncated_parts, 1, "{r:?}");
    assert_eq!(
        r.completed_uploads, 0,
        "incomplete bytes are not completed: {r:?}"
    );
    assert_eq!(r.lost_uploads, 1, "{r:?}");
    // The finalized file is intact.
    let (f, back) = store.read(&kept.id).expect("kept");
    assert_eq!(f.sha256_hex, sha_hex(&data));
    assert!(back == data);
    // No half file is visible.
    let listed: Vec<String> = store
        .list(None, None)
        .expect("list")
        .files
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(listed, vec![kept.id.clone()]);
    assert!(matches!(
        store.get(&lost_blob.id),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get(&renamed.file_id),
        Err(StoreError::NotFound(_))
    ));
    // The interrupted upload resumes from its last acknowledged chunk.
    let status = store.upload_status(&resumed.upload_id).expect("still open");
    assert_eq!(status.received, MIB as u64);
    let Appended::Final(done) = store
        .append_bytes(&resumed.upload_id, MIB as u64, &data[MIB..2 * MIB], true)
        .expect("resume")
    else {
        panic!("not final")
    };
    assert_eq!(done.sha256_hex, sha_hex(&data[..2 * MIB]));
    let mut expected = vec![kept_blob_name(&store, &kept), resumed.upload_id.clone()];
    expected.sort();
    assert_eq!(names_in(&blobs), expected);
    assert!(names_in(&uploads).is_empty());
}

fn kept_blob_name(store: &Store, f: &FileRecord) -> String {
    // Blobs are named after the upload that made them; find it by content size.
    let blobs = store.config().dir.join("blobs");
    names_in(&blobs)
        .into_iter()
        .find(|n| fs::metadata(blobs.join(n)).map(|m| m.len()).ok() == Some(f.size_bytes))
        .expect("kept blob")
}

#[test]
fn a_crash_between_rename_and_record_completes_the_upload() {
    let env = Env::new();
    let t = {
        let store = env.open();
        let t = store
            .start_upload(new_upload("image/png", PNG.len()))
            .expect("start");
        store
            .append_bytes(&t.upload_id, 0, PNG, false)
            .expect("all bytes, not finalized");
        t
    };
    let root = env.root();
    fs::rename(
        root.join("uploads").join(format!("{}.part", t.upload_id)),
        root.join("blobs").join(&t.upload_id),
    )
    .expect("the rename that happened before the crash");
    let store = env.open();
    assert_eq!(store.recovery().completed_uploads, 1);
    let (f, bytes) = store.read(&t.file_id).expect("the file exists");
    assert_eq!(bytes, PNG);
    assert_eq!(f.mime_type, "image/png");
    assert_eq!(f.sha256_hex, sha_hex(PNG));
}

#[test]
fn expired_files_vanish_and_the_sweep_deletes_them() {
    let env = Env::new();
    let mut config = env.config();
    config.default_ttl = Duration::from_secs(10);
    let store = Store::open(config.clone()).expect("open");
    let f = upload(&store, b"short-lived", "text/plain");
    assert_eq!(f.expire_time_us - f.create_time_us, 10_000_000);
    env.advance(Duration::from_secs(9));
    assert!(store.get(&f.id).is_ok());
    env.advance(Duration::from_secs(1));
    assert!(
        matches!(store.get(&f.id), Err(StoreError::NotFound(_))),
        "invisible at expiry"
    );
    assert!(matches!(store.read(&f.id), Err(StoreError::NotFound(_))));
    assert!(store.list(None, None).expect("list").files.is_empty());
    assert!(matches!(store.delete(&f.id), Err(StoreError::NotFound(_))));
    assert_eq!(
        names_in(&env.root().join("blobs")).len(),
        1,
        "bytes stay until the sweep"
    );
    let report = store.sweep().expect("sweep");
    assert_eq!(report.expired_files, 1);
    assert!(names_in(&env.root().join("blobs")).is_empty());
    assert_eq!(store.sweep().expect("again").expired_files, 0);
    drop(store);
    // The id of an expired file can be taken again.
    let store = Store::open(config).expect("reopen");
    let t = store
        .start_upload(NewUpload {
            name: Some(format!("files/{}", f.id)),
            ..new_upload("text/plain", 1)
        })
        .expect("the name is free again");
    assert_eq!(t.file_id, f.id);
}

#[test]
fn abandoned_uploads_are_cleaned_up() {
    let env = Env::new();
    let mut config = env.config();
    config.upload_timeout = Duration::from_secs(60);
    let store = Store::open(config).expect("open");
    let idle = store
        .start_upload(new_upload("text/plain", 10))
        .expect("start");
    store
        .append_bytes(&idle.upload_id, 0, b"12345", false)
        .expect("chunk");
    let busy = store
        .start_upload(new_upload("text/plain", 10))
        .expect("start");
    env.advance(Duration::from_secs(45));
    store
        .append_bytes(&busy.upload_id, 0, b"12345", false)
        .expect("activity");
    env.advance(Duration::from_secs(30));
    assert!(matches!(
        store.upload_status(&idle.upload_id),
        Err(StoreError::UploadNotFound)
    ));
    assert!(
        store.upload_status(&busy.upload_id).is_ok(),
        "recent activity keeps it"
    );
    let report = store.sweep().expect("sweep");
    assert_eq!(report.abandoned_uploads, 1);
    assert_eq!(
        names_in(&env.root().join("uploads")),
        vec![format!("{}.part", busy.upload_id)]
    );
    assert!(matches!(
        store.append_bytes(&idle.upload_id, 5, b"67890", true),
        Err(StoreError::UploadNotFound)
    ));
}
