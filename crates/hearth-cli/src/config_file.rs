//! `hearth serve --config hearth.toml`: settings from a TOML file. Each key
//! is a `serve` flag (`model`, `port`, `api-key` …); the file fills the
//! flag's environment variable when it is unset, so a flag on the command
//! line beats the environment, which beats the file.

use std::path::Path;

use anyhow::{bail, Context};

/// File keys and the environment variables they stand for.
const KEYS: &[(&str, &str)] = &[
    ("model", "HEARTH_MODEL"),
    ("mmproj", "HEARTH_MMPROJ"),
    ("chat-template", "HEARTH_CHAT_TEMPLATE"),
    ("host", "HEARTH_HOST"),
    ("port", "HEARTH_PORT"),
    ("api-key", "HEARTH_API_KEYS"),
    ("allow-unauthenticated", "HEARTH_ALLOW_UNAUTHENTICATED"),
    ("alias", "HEARTH_ALIAS"),
    ("parallel", "HEARTH_PARALLEL"),
    ("ctx", "HEARTH_CTX"),
    ("threads", "HEARTH_THREADS"),
    ("gpu-layers", "HEARTH_GPU_LAYERS"),
    ("kv-per-sequence", "HEARTH_KV_PER_SEQUENCE"),
    ("step-tokens", "HEARTH_STEP_TOKENS"),
    ("max-output-tokens", "HEARTH_MAX_OUTPUT_TOKENS"),
    ("max-thinking-tokens", "HEARTH_MAX_THINKING_TOKENS"),
    ("max-body-mib", "HEARTH_MAX_BODY_MIB"),
    ("max-inflight-mib", "HEARTH_MAX_INFLIGHT_MIB"),
    ("temperature", "HEARTH_TEMPERATURE"),
    ("top-p", "HEARTH_TOP_P"),
    ("top-k", "HEARTH_TOP_K"),
    ("files-dir", "HEARTH_FILES_DIR"),
    ("files-ttl-hours", "HEARTH_FILES_TTL_HOURS"),
    ("files-max-total-gb", "HEARTH_FILES_MAX_TOTAL_GB"),
    ("document-timeout-secs", "HEARTH_DOCUMENT_TIMEOUT_SECS"),
    ("document-memory-mib", "HEARTH_DOCUMENT_MEMORY_MIB"),
    ("document-workers", "HEARTH_DOCUMENT_WORKERS"),
];

/// The `--config` path among the arguments (or `HEARTH_CONFIG`).
pub fn config_path(args: &[String]) -> Option<String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().cloned();
        }
        if let Some(p) = arg.strip_prefix("--config=") {
            return Some(p.to_string());
        }
    }
    std::env::var("HEARTH_CONFIG")
        .ok()
        .filter(|p| !p.is_empty())
}

/// The (variable, value) pairs a file sets; unknown keys are errors.
pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", origin.display()))?;
    let mut out = Vec::new();
    for (key, value) in &table {
        let normalized = key.replace('_', "-");
        let Some((_, var)) = KEYS.iter().find(|(k, _)| *k == normalized) else {
            let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            bail!(
                "{}: unknown setting {key:?} (known: {})",
                origin.display(),
                known.join(", ")
            );
        };
        out.push((*var, scalar_list(key, value, origin)?));
    }
    Ok(out)
}

fn scalar_list(key: &str, value: &toml::Value, origin: &Path) -> anyhow::Result<String> {
    let scalar = |v: &toml::Value| -> anyhow::Result<String> {
        Ok(match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => bail!(
                "{}: {key} must be a string, number, boolean or a list of them",
                origin.display()
            ),
        })
    };
    match value {
        toml::Value::Array(items) => Ok(items
            .iter()
            .map(scalar)
            .collect::<anyhow::Result<Vec<_>>>()?
            .join(",")),
        v => scalar(v),
    }
}

/// Reads the file named by `--config` / `HEARTH_CONFIG` and sets the
/// variables that are still unset. Runs before any thread starts.
pub fn apply(args: &[String]) -> anyhow::Result<()> {
    let Some(path) = config_path(args) else {
        return Ok(());
    };
    let path = Path::new(&path);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    for (var, value) in parse(&text, path)? {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_variables_and_lists_join() {
        let mut got = parse(
            "model = [\"a.gguf\", \"b.gguf\"]\nport = 9000\nallow_unauthenticated = true\n",
            Path::new("t.toml"),
        )
        .expect("parses");
        got.sort();
        assert_eq!(
            got,
            vec![
                ("HEARTH_ALLOW_UNAUTHENTICATED", "true".to_string()),
                ("HEARTH_MODEL", "a.gguf,b.gguf".to_string()),
                ("HEARTH_PORT", "9000".to_string()),
            ]
        );
        let err = parse("prot = 1", Path::new("t.toml")).expect_err("typo");
        assert!(err.to_string().contains("unknown setting \"prot\""));
        assert!(parse("port = {a = 1}", Path::new("t.toml")).is_err());
        assert_eq!(
            config_path(&["serve".into(), "--config=x.toml".into()]),
            Some("x.toml".into())
        );
    }
}
