//! Model sources: a local GGUF path, or a GGUF repository on the Hugging
//! Face Hub (`owner/repo`, `owner/repo:Q4_K_M`, `owner/repo/file.gguf`),
//! through the standard Hugging Face cache (HF_HOME / HF_HUB_CACHE).

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo};

/// The quantization picked when a repository offers several.
pub const DEFAULT_QUANT: &str = "Q4_K_M";

/// A model named on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    Path(PathBuf),
    Hub {
        repo: String,
        file: FileChoice,
    },
    /// A model hearth fetches and verifies itself ([`crate::builtin`]).
    Builtin(&'static crate::builtin::BuiltinModel),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChoice {
    /// An exact file in the repository.
    Named(String),
    /// The .gguf file whose name contains this quantization (case-insensitive).
    Quant(String),
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Offline(String),
}

impl ModelSpec {
    /// `path/to/file.gguf` (or any existing path) is a path; a built-in
    /// model's name (`SmolLM2-135M-Instruct`) is that model; `owner/repo`,
    /// `owner/repo:QUANT` and `owner/repo/file.gguf` are hub ids.
    pub fn parse(spec: &str) -> ModelSpec {
        let p = Path::new(spec);
        if p.exists() || spec.starts_with('.') || spec.starts_with('/') || spec.starts_with('~') {
            return ModelSpec::Path(p.to_path_buf());
        }
        if let Some(m) = crate::builtin::find(spec) {
            return ModelSpec::Builtin(m);
        }
        let (base, quant) = match spec.rsplit_once(':') {
            Some((b, q)) if !q.is_empty() && !q.contains('/') => (b, Some(q)),
            _ => (spec, None),
        };
        let parts: Vec<&str> = base.split('/').collect();
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match parts.as_slice() {
            [owner, repo] if valid(owner) && valid(repo) && !repo.ends_with(".gguf") => {
                ModelSpec::Hub {
                    repo: format!("{owner}/{repo}"),
                    file: FileChoice::Quant(quant.unwrap_or(DEFAULT_QUANT).to_string()),
                }
            }
            [owner, repo, rest @ ..]
                if valid(owner)
                    && valid(repo)
                    && quant.is_none()
                    && rest.last().is_some_and(|f| f.ends_with(".gguf")) =>
            {
                ModelSpec::Hub {
                    repo: format!("{owner}/{repo}"),
                    file: FileChoice::Named(rest.join("/")),
                }
            }
            _ => ModelSpec::Path(p.to_path_buf()),
        }
    }
}

fn matches(name: &str, choice: &FileChoice) -> bool {
    match choice {
        FileChoice::Named(n) => name == n,
        FileChoice::Quant(q) => {
            let lower = name.to_ascii_lowercase();
            lower.ends_with(".gguf")
                && !lower.contains("mmproj")
                && lower.contains(&q.to_ascii_lowercase())
        }
    }
}

/// The Hugging Face cache as huggingface_hub finds it: `HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `~/.cache/huggingface/hub` (hf-hub alone reads only
/// `HF_HOME`).
fn cache() -> Cache {
    match std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        Some(dir) => Cache::new(PathBuf::from(dir)),
        None => Cache::from_env(),
    }
}

/// A file of the repository already in the local cache, if any.
fn cached(repo: &str, choice: &FileChoice) -> Option<PathBuf> {
    let cache = cache();
    if let FileChoice::Named(n) = choice {
        return cache.repo(Repo::model(repo.to_string())).get(n);
    }
    let dir = cache
        .path()
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("snapshots");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .flat_map(|snap| {
            std::fs::read_dir(snap.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| matches(n, choice))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// A GGUF file found in the local Hugging Face cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    /// `owner/repo`.
    pub repo: String,
    /// The file's path inside the repository.
    pub file: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Every GGUF file in the local Hugging Face cache (`HF_HOME`,
/// `HF_HUB_CACHE`), sorted by repository and file.
pub fn cached_gguf() -> Vec<CachedFile> {
    let root = cache().path().clone();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(repo) = name.strip_prefix("models--") else {
            continue;
        };
        let repo = repo.replacen("--", "/", 1);
        let snapshots = entry.path().join("snapshots");
        for snap in std::fs::read_dir(snapshots).into_iter().flatten().flatten() {
            collect_gguf(&snap.path(), &snap.path(), &repo, &mut out);
        }
    }
    out.sort_by(|a, b| (&a.repo, &a.file).cmp(&(&b.repo, &b.file)));
    out.dedup_by(|a, b| a.repo == b.repo && a.file == b.file);
    out
}

fn collect_gguf(base: &Path, dir: &Path, repo: &str, out: &mut Vec<CachedFile>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_gguf(base, &path, repo, out);
        } else if path.extension().is_some_and(|e| e == "gguf") {
            // Snapshot entries are links into blobs/; metadata follows them.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let file = path
                .strip_prefix(base)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(CachedFile {
                repo: repo.to_string(),
                file,
                path,
                bytes: meta.len(),
            });
        }
    }
}

/// Resolves a model spec to a local GGUF file, downloading it (with a
/// progress bar) into the Hugging Face cache when it is not there yet.
pub fn resolve(spec: &ModelSpec) -> Result<PathBuf, HubError> {
    let (repo, choice) = match spec {
        ModelSpec::Path(p) => return Ok(p.clone()),
        ModelSpec::Builtin(m) => return crate::builtin::resolve(m),
        ModelSpec::Hub { repo, file } => (repo, file),
    };
    if let Some(p) = cached(repo, choice) {
        return Ok(p);
    }
    let offline = |what: String| {
        HubError::Offline(format!(
            "{what}. Without network access, download the GGUF file elsewhere and pass its path: hearth serve --model /path/to/model.gguf"
        ))
    };
    let mut builder = ApiBuilder::from_env();
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        builder = builder.with_cache_dir(PathBuf::from(dir));
    }
    let api = builder
        .with_progress(true)
        .build()
        .map_err(|e| offline(format!("cannot use the Hugging Face Hub ({e})")))?;
    let remote = api.model(repo.clone());
    let file = match choice {
        FileChoice::Named(n) => n.clone(),
        FileChoice::Quant(q) => {
            let info = remote.info().map_err(|e| {
                offline(format!(
                    "cannot reach the Hugging Face Hub to list {repo} ({e})"
                ))
            })?;
            let mut names: Vec<String> = info
                .siblings
                .into_iter()
                .map(|s| s.rfilename)
                .filter(|n| matches(n, choice))
                .collect();
            names.sort();
            names.into_iter().next().ok_or_else(|| {
                HubError::NotFound(format!("{repo} has no .gguf file for quantization {q}; name one with {repo}/<file>.gguf"))
            })?
        }
    };
    tracing::info!("downloading {repo}/{file} into the Hugging Face cache");
    remote
        .get(&file)
        .map_err(|e| offline(format!("cannot download {repo}/{file} ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            ModelSpec::parse("unsloth/gemma-3-1b-it-GGUF"),
            ModelSpec::Hub {
                repo: "unsloth/gemma-3-1b-it-GGUF".into(),
                file: FileChoice::Quant("Q4_K_M".into())
            }
        );
        assert_eq!(
            ModelSpec::parse("Qwen/Qwen3-0.6B-GGUF:Q8_0"),
            ModelSpec::Hub {
                repo: "Qwen/Qwen3-0.6B-GGUF".into(),
                file: FileChoice::Quant("Q8_0".into())
            }
        );
        assert_eq!(
            ModelSpec::parse("Qwen/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf"),
            ModelSpec::Hub {
                repo: "Qwen/Qwen3-0.6B-GGUF".into(),
                file: FileChoice::Named("Qwen3-0.6B-Q8_0.gguf".into())
            }
        );
        assert_eq!(
            ModelSpec::parse("models/x.gguf"),
            ModelSpec::Path("models/x.gguf".into())
        );
        assert_eq!(ModelSpec::parse("./a/b"), ModelSpec::Path("./a/b".into()));
        assert_eq!(
            ModelSpec::parse("SmolLM2-135M-Instruct"),
            ModelSpec::Builtin(&crate::builtin::SMOLLM2_135M_INSTRUCT)
        );
    }

    #[test]
    fn cached_files_resolve_without_network() {
        let home = std::env::temp_dir().join(format!("hearth-hub-{}", std::process::id()));
        let snap = home.join("hub/models--acme--tiny-GGUF/snapshots/abc");
        std::fs::create_dir_all(&snap).expect("dir");
        std::fs::write(snap.join("tiny-Q8_0.gguf"), b"x").expect("write");
        std::fs::write(snap.join("tiny-Q4_K_M.gguf"), b"x").expect("write");
        std::env::set_var("HF_HOME", &home);
        let got = resolve(&ModelSpec::parse("acme/tiny-GGUF")).expect("cached");
        assert!(got.ends_with("tiny-Q4_K_M.gguf"), "{}", got.display());
        let got = resolve(&ModelSpec::parse("acme/tiny-GGUF:q8_0")).expect("cached");
        assert!(got.ends_with("tiny-Q8_0.gguf"));
        // Not cached, and no hub reachable from here: the error says what to do.
        std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:9");
        let err = resolve(&ModelSpec::parse("acme/other-GGUF"))
            .expect_err("offline")
            .to_string();
        assert!(err.contains("--model /path/to/model.gguf"), "{err}");
    }
}
