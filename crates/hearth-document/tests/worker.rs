//! Documents read in the worker process, hostile ones included: each ends
//! in an answer or a clear error, within its limits, and the reader goes on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_document::{DocumentError, ReadOptions, Reader, ReaderConfig};

fn fixture(name: &str) -> Arc<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/documents")
        .join(name);
    Arc::new(std::fs::read(path).expect("fixture"))
}

fn reader(timeout: Duration, memory_mib: u64) -> Reader {
    Reader::new(ReaderConfig {
        program: env!("CARGO_BIN_EXE_hearth-document-worker").into(),
        args: Vec::new(),
        timeout,
        memory_mib,
        workers: 2,
    })
}

fn rendered() -> ReadOptions {
    ReadOptions {
        render_px: Some(448),
        ..ReadOptions::default()
    }
}

#[tokio::test]
async fn a_document_comes_back_whole() {
    let r = reader(Duration::from_secs(60), 1024);
    let doc = r
        .read(fixture("sample.pdf"), rendered())
        .await
        .expect("reads");
    assert_eq!(doc.pages.len(), 5);
    assert!(doc.pages[1].text.contains("4721"));
    for page in &doc.pages {
        let png = page.image.as_deref().expect("an image");
        assert!(png.starts_with(b"\x89PNG"));
    }
    let text = r
        .read(fixture("sample.pdf"), ReadOptions::default())
        .await
        .expect("reads");
    assert!(text.pages.iter().all(|p| p.image.is_none()));
}

#[tokio::test]
async fn a_decompression_bomb_hits_the_memory_limit() {
    // 4 GiB of content stream from 7 kB, with 512 MiB to read it in.
    let r = reader(Duration::from_secs(60), 512);
    let t = Instant::now();
    let err = r
        .read(fixture("hostile-bomb.pdf"), rendered())
        .await
        .expect_err("too big to read");
    assert!(err.is_input_error(), "{err:?}");
    assert_eq!(err, DocumentError::OutOfMemory(512));
    assert!(t.elapsed() < Duration::from_secs(60));
    // The reader goes on.
    r.read(fixture("fact.pdf"), rendered())
        .await
        .expect("reads");
}

#[tokio::test]
async fn a_huge_page_is_rendered_at_the_asked_size() {
    let r = reader(Duration::from_secs(60), 512);
    let doc = r
        .read(fixture("hostile-huge-page.pdf"), rendered())
        .await
        .expect("reads");
    let png = doc.pages[0].image.as_deref().expect("image");
    // PNG's IHDR: width and height at bytes 16..24.
    assert_eq!(&png[16..24], &[0, 0, 1, 192, 0, 0, 1, 192], "448 x 448");
}

#[tokio::test]
async fn deep_nesting_ends_in_an_answer_or_an_error() {
    let r = reader(Duration::from_secs(60), 512);
    // hayro finds no page in a page tree it cannot parse.
    let got = r.read(fixture("hostile-nesting.pdf"), rendered()).await;
    assert_eq!(got, Err(DocumentError::NoPages));
}

#[tokio::test]
async fn the_deadline_kills_the_worker() {
    let r = reader(Duration::from_millis(1), 512);
    let err = r
        .read(fixture("sample.pdf"), rendered())
        .await
        .expect_err("no time");
    assert_eq!(err, DocumentError::Timeout(0));
}

#[tokio::test]
async fn errors_of_the_document_cross_the_process() {
    let r = reader(Duration::from_secs(60), 512);
    let err = r.read(fixture("encrypted.pdf"), rendered()).await;
    assert_eq!(err, Err(DocumentError::Encrypted));
    let err = r.read(fixture("nopages.pdf"), rendered()).await;
    assert_eq!(err, Err(DocumentError::NoPages));
    let err = r
        .read(Arc::new(b"%PDF-1.4 garbage".to_vec()), rendered())
        .await;
    assert!(matches!(err, Err(DocumentError::Invalid(_))), "{err:?}");
}

#[tokio::test]
async fn a_missing_worker_is_the_server_s_error() {
    let r = Reader::new(ReaderConfig {
        program: "/nonexistent/hearth".into(),
        args: Vec::new(),
        timeout: Duration::from_secs(5),
        memory_mib: 512,
        workers: 1,
    });
    let err = r
        .read(fixture("fact.pdf"), rendered())
        .await
        .expect_err("no worker");
    assert!(!err.is_input_error(), "{err:?}");
}
