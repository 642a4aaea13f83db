//! `client.files()`: the Files API. Uploads use the resumable protocol
//! exactly as the official SDKs drive it (sdk-wire.md §8): a start request
//! that returns the upload URL, then 8 MiB chunks, the last one finalizing.

use std::path::Path;
use std::pin::Pin;

use futures_util::Stream;
use hearth_wire::{CreateFileRequest, CreateFileResponse, File, ListFilesResponse, Part};
use reqwest::Method;
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::http::{Call, Http};
use crate::models::paginate;

/// The SDKs' chunk size.
pub const CHUNK_SIZE: usize = 8 * 1024 * 1024;

/// Optional settings of an upload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadConfig {
    /// Declared mime type; inferred from the file extension when absent.
    pub mime_type: Option<String>,
    pub display_name: Option<String>,
    /// A chosen id (`files/abc` or `abc`); the server picks one otherwise.
    pub name: Option<String>,
}

/// A stream of files, fetched page by page as it is read.
pub type FileStream = Pin<Box<dyn Stream<Item = Result<File>> + Send>>;

#[derive(Debug, Clone)]
pub struct Files {
    http: Http,
}

/// `abc`, `files/abc` or a file URI → `files/abc`.
fn resource(name: &str) -> String {
    let id = name.rsplit('/').next().unwrap_or(name);
    format!("files/{id}")
}

/// Where the bytes come from.
enum Source<'a> {
    Bytes(&'a [u8]),
    File(tokio::fs::File),
}

impl Files {
    pub(crate) fn new(http: Http) -> Self {
        Files { http }
    }

    /// Uploads a file from disk in 8 MiB chunks (never all in memory).
    pub async fn upload_path(&self, path: impl AsRef<Path>, config: UploadConfig) -> Result<File> {
        let path = path.as_ref();
        let mime = match &config.mime_type {
            Some(m) => m.clone(),
            None => guess_mime(path)?,
        };
        let file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        self.upload(Source::File(file), size, &mime, file_name, &config)
            .await
    }

    /// Uploads bytes held in memory; `config.mime_type` is required.
    pub async fn upload_bytes(&self, bytes: &[u8], config: UploadConfig) -> Result<File> {
        let mime = config
            .mime_type
            .clone()
            .ok_or_else(|| Error::Config("uploading bytes needs UploadConfig.mime_type".into()))?;
        let size = bytes.len() as u64;
        self.upload(Source::Bytes(bytes), size, &mime, None, &config)
            .await
    }

    async fn upload(
        &self,
        mut source: Source<'_>,
        size: u64,
        mime: &str,
        file_name: Option<String>,
        config: &UploadConfig,
    ) -> Result<File> {
        let upload_url = self.start(size, mime, file_name, config).await?;
        let mut offset: u64 = 0;
        loop {
            let chunk = next_chunk(&mut source, offset).await?;
            let last = offset + chunk.len() as u64 >= size;
            let command = if last { "upload, finalize" } else { "upload" };
            let call = Call {
                method: Method::POST,
                url: upload_url.clone(),
                headers: vec![
                    ("x-goog-upload-command", command.to_string()),
                    ("x-goog-upload-offset", offset.to_string()),
                ],
                body: Some(chunk.clone()),
                with_key: true,
                query: &[],
            };
            let resp = self.http.send(&call).await?;
            let status = header(&resp, "x-goog-upload-status").map(|s| s.to_ascii_lowercase());
            offset += chunk.len() as u64;
            if last {
                if status.as_deref() != Some("final") {
                    return Err(Error::Protocol(format!(
                        "upload status is not finalized (x-goog-upload-status: {status:?})"
                    )));
                }
                let body = resp.bytes().await?;
                let created: CreateFileResponse = crate::http::decode(&body)?;
                return Ok(created.file);
            }
            if status.as_deref() != Some("active") {
                return Err(Error::Protocol(format!(
                    "upload stopped at byte {offset} (x-goog-upload-status: {status:?})"
                )));
            }
        }
    }

    /// The start request; returns the URL the bytes go to.
    async fn start(
        &self,
        size: u64,
        mime: &str,
        file_name: Option<String>,
        config: &UploadConfig,
    ) -> Result<String> {
        let body = CreateFileRequest {
            file: Some(File {
                name: config.name.as_deref().map(resource),
                display_name: config.display_name.clone(),
                mime_type: Some(mime.to_string()),
                size_bytes: Some(i64::try_from(size).unwrap_or(i64::MAX)),
                ..File::default()
            }),
        };
        let mut call = Http::json_call(
            Method::POST,
            self.http.upload_url("files"),
            Some(&body),
            &[],
        )?;
        call.headers = vec![
            ("x-goog-upload-protocol", "resumable".to_string()),
            ("x-goog-upload-command", "start".to_string()),
            ("x-goog-upload-header-content-length", size.to_string()),
            ("x-goog-upload-header-content-type", mime.to_string()),
        ];
        if let Some(name) = file_name {
            call.headers.push(("x-goog-upload-file-name", name));
        }
        let resp = self.http.send(&call).await?;
        let url = header(&resp, "x-goog-upload-url")
            .ok_or_else(|| Error::Protocol("failed to get upload url".into()))?;
        Ok(self.rebase(&url))
    }

    /// The upload URL with the scheme, host and port of our base URL (as
    /// the SDKs do), its path and query kept.
    fn rebase(&self, url: &str) -> String {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return url.to_string();
        };
        let origin = match reqwest::Url::parse(&self.http.base_url) {
            Ok(base) => base.origin().ascii_serialization(),
            Err(_) => return url.to_string(),
        };
        match parsed.query() {
            Some(q) => format!("{origin}{}?{q}", parsed.path()),
            None => format!("{origin}{}", parsed.path()),
        }
    }

    /// One file's metadata.
    pub async fn get(&self, name: &str) -> Result<File> {
        let call = Http::json_call(
            Method::GET,
            self.http.url(&resource(name)),
            None::<&()>,
            &[],
        )?;
        self.http.json(&call).await
    }

    /// Deletes a file.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let call = Http::json_call(
            Method::DELETE,
            self.http.url(&resource(name)),
            None::<&()>,
            &[],
        )?;
        self.http.send(&call).await?;
        Ok(())
    }

    /// One page of the file list.
    pub async fn list_page(
        &self,
        page_size: Option<u32>,
        page_token: Option<&str>,
    ) -> Result<ListFilesResponse> {
        let query = crate::http::page_query(page_size, page_token);
        let call = Http::json_call(Method::GET, self.http.url("files"), None::<&()>, &query)?;
        self.http.json(&call).await
    }

    /// Every file, following `nextPageToken` as the stream is read.
    /// `page_size` is sent with every page request (server default when None).
    pub fn list(&self, page_size: impl Into<Option<u32>>) -> FileStream {
        let files = self.clone();
        let page_size = page_size.into();
        paginate(move |token| {
            let files = files.clone();
            async move {
                let page = files.list_page(page_size, token.as_deref()).await?;
                Ok((page.files, page.next_page_token))
            }
        })
    }
}

/// A file on disk as an inline-data part (mime type from the extension, or
/// `mime_type`), for requests that carry their attachments inline.
pub async fn inline_part(path: impl AsRef<Path>, mime_type: Option<&str>) -> Result<Part> {
    use base64::Engine as _;
    let path = path.as_ref();
    let mime = match mime_type {
        Some(m) => m.to_string(),
        None => guess_mime(path)?,
    };
    let bytes = tokio::fs::read(path).await?;
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(Part::from_base64(data, mime))
}

/// The mime type of a file name's extension, as the SDKs infer it.
pub fn guess_mime(path: &Path) -> Result<String> {
    mime_guess::from_path(path)
        .first_raw()
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Config(format!(
                "cannot infer the mime type of {}: name it explicitly",
                path.display()
            ))
        })
}

/// The next chunk (at most [`CHUNK_SIZE`] bytes) starting at `offset`.
async fn next_chunk(source: &mut Source<'_>, offset: u64) -> Result<bytes::Bytes> {
    match source {
        Source::Bytes(all) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
            let end = (start + CHUNK_SIZE).min(all.len());
            Ok(bytes::Bytes::copy_from_slice(&all[start..end]))
        }
        Source::File(file) => {
            let mut buf = Vec::with_capacity(CHUNK_SIZE);
            let mut limited = (&mut *file).take(CHUNK_SIZE as u64);
            limited.read_to_end(&mut buf).await?;
            Ok(bytes::Bytes::from(buf))
        }
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}
