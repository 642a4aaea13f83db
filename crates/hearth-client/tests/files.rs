//! `client.files()` against a real hearth with a durable store: the
//! resumable protocol in 8 MiB chunks, get / list / delete, and a file used
//! by URI in generateContent.

mod common;

use std::sync::Arc;

use futures_util::TryStreamExt;
use hearth_client::types::Part;
use hearth_client::{Client, UploadConfig};
use hearth_server::{app, AppState, ModelRegistry, ServerConfig};
use hearth_store::{Store, StoreConfig};

use common::{engine, serve_router, MODEL};

async fn client_with_store(name: &str) -> (Client, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("hearth-client-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(Store::open(StoreConfig::new(&dir)).expect("open store"));
    let state = AppState::new(
        ModelRegistry::new(vec![engine(MODEL)]),
        ServerConfig::default(),
    )
    .with_files(store);
    let base = serve_router(app(state)).await;
    let client = Client::builder()
        .base_url(base)
        .api_version("v1beta")
        .api_key("any")
        .build()
        .expect("client");
    (client, dir)
}

/// A deterministic 20 MB payload that is not all the same byte.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn upload_get_list_use_and_delete() {
    let (client, dir) = client_with_store("crud").await;
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "Les chats ont quatre pattes.").expect("write notes");
    let file = client
        .files()
        .upload_path(
            &notes,
            UploadConfig {
                display_name: Some("notes".into()),
                ..UploadConfig::default()
            },
        )
        .await
        .expect("upload");
    let name = file.name.clone().expect("name");
    assert!(name.starts_with("files/"));
    assert_eq!(file.mime_type.as_deref(), Some("text/plain"));
    assert_eq!(file.size_bytes, Some(28));
    assert_eq!(file.display_name.as_deref(), Some("notes"));

    let got = client.files().get(&name).await.expect("get");
    assert_eq!(got, file);
    let listed: Vec<_> = client.files().list(None).try_collect().await.expect("list");
    assert_eq!(listed.len(), 1);

    // The uploaded text document is read by the model through its URI.
    let uri = file.uri.clone().expect("uri");
    let with_file = client
        .models()
        .count_tokens(
            MODEL,
            vec![Part::from_uri(&uri, "text/plain"), Part::text("Résume.")],
            None,
        )
        .await
        .expect("count with file");
    let without = client
        .models()
        .count_tokens(MODEL, "Résume.", None)
        .await
        .expect("count");
    assert!(with_file.total_tokens > without.total_tokens);
    let reply = client
        .models()
        .generate_content(
            MODEL,
            vec![Part::from_uri(&uri, "text/plain"), Part::text("Résume.")],
            None,
        )
        .await
        .expect("generate with a file");
    assert!(reply.text().is_some());

    client.files().delete(&name).await.expect("delete");
    let err = client.files().get(&name).await.expect_err("gone");
    assert_eq!(err.code(), Some(403));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_20_mb_upload_goes_in_8_mib_chunks_and_pages_list() {
    let (client, dir) = client_with_store("big").await;
    let bytes = payload(20 * 1000 * 1000);
    let big = client
        .files()
        .upload_bytes(
            &bytes,
            UploadConfig {
                mime_type: Some("application/octet-stream".into()),
                ..UploadConfig::default()
            },
        )
        .await
        .expect("20 MB upload");
    assert_eq!(big.size_bytes, Some(20_000_000));
    // sha256Hash: base64 of the lowercase hex digest, as Google writes it.
    let hash = big.sha256_hash.clone().expect("hash");
    assert_eq!(hash.len(), 88);

    for i in 0..2 {
        client
            .files()
            .upload_bytes(
                format!("file {i}").as_bytes(),
                UploadConfig {
                    mime_type: Some("text/plain".into()),
                    name: Some(format!("small-{i}")),
                    ..UploadConfig::default()
                },
            )
            .await
            .expect("small upload");
    }
    let first = client.files().list_page(Some(2), None).await.expect("page");
    assert_eq!(first.files.len(), 2);
    assert!(first.next_page_token.is_some());
    let all: Vec<_> = client
        .files()
        .list(2)
        .try_collect()
        .await
        .expect("all pages");
    assert_eq!(all.len(), 3);
    assert!(all
        .iter()
        .any(|f| f.name.as_deref() == Some("files/small-1")));

    // A mime type that does not match the content is refused at the end.
    let err = client
        .files()
        .upload_bytes(
            b"not a png",
            UploadConfig {
                mime_type: Some("image/png".into()),
                ..UploadConfig::default()
            },
        )
        .await
        .expect_err("mime mismatch");
    assert_eq!(err.code(), Some(400));
    let _ = std::fs::remove_dir_all(&dir);
}
