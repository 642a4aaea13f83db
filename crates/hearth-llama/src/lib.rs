//! hearth's model runner on llama.cpp (through `llama-cpp-2`): GGUF loading
//! and checks, the tokenizer, multi-sequence decode and KV-cache operations.
//! The only crate that touches FFI, and only through the safe binding.

pub mod audio;
pub mod builtin;
pub mod gguf;
pub mod hub;
pub mod media;
pub mod runner;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hearth_engine::llm::{LlmEngine, LlmEngineConfig, RunnerFactory};
use hearth_engine::runner::{ModelMeta, Runner};
use hearth_engine::template::{builtin as formats, ChatTemplate};
use hearth_engine::SamplingDefaults;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

pub use gguf::{read_header, GgufError, GgufHeader};
pub use runner::{ContextOptions, LlamaRunner, LlamaTokenizer};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("llama.cpp backend: {0}")]
    Backend(String),
    #[error("{0}")]
    Engine(String),
}

/// How to load and run a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub path: PathBuf,
    /// The model id served (`models/<id>`); defaults to the file stem.
    pub id: Option<String>,
    pub context: ContextOptions,
    /// Layers offloaded to a GPU (0 on CPU builds).
    pub gpu_layers: u32,
    pub max_output_tokens: u32,
    /// Caps every thought (None: no cap).
    pub max_thinking_tokens: Option<u32>,
    /// A chat template (Jinja source) to use instead of the GGUF's.
    pub chat_template: Option<String>,
    pub queue_limit: usize,
    /// A multimodal projector GGUF (mmproj) made for this model: the model
    /// then reads images.
    pub mmproj: Option<PathBuf>,
    /// Prompt tokens prefilled per engine step (None: `context.batch`; never
    /// more).
    pub step_tokens: Option<u32>,
    /// Jump-forward constrained decoding (on by default).
    pub jump_forward: bool,
    /// Prompt-lookup speculation for a lone stream (on by default).
    pub speculate: bool,
    /// Default sampling set by configuration: beats the GGUF's.
    pub sampling: SamplingChoice,
    /// Default sampling recommended for this model elsewhere (a built-in
    /// model's card): used where neither configuration nor the GGUF says.
    pub recommended_sampling: SamplingChoice,
}

/// Default sampling values, each possibly unset.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplingChoice {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
}

impl LoadOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as i32)
            .unwrap_or(2);
        LoadOptions {
            path: path.into(),
            id: None,
            context: ContextOptions {
                sequences: 4,
                ctx_per_sequence: 4096,
                batch: 512,
                threads,
                kv_f32: false,
                kv_unified: true,
            },
            gpu_layers: 0,
            max_output_tokens: 8192,
            max_thinking_tokens: None,
            step_tokens: None,
            jump_forward: true,
            speculate: true,
            chat_template: None,
            queue_limit: 64,
            mmproj: None,
            sampling: SamplingChoice::default(),
            recommended_sampling: SamplingChoice::default(),
        }
    }
}

/// The process-wide llama.cpp backend, initialised once; its logs go to tracing.
pub fn backend() -> Result<&'static LlamaBackend, LoadError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LoadError::Backend(e.clone()))
}

/// Loads a GGUF model. The weights stay memory-mapped and live for the rest
/// of the process (a served model is never unloaded).
pub fn load_model(
    path: &Path,
    gpu_layers: u32,
) -> Result<(&'static LlamaModel, GgufHeader), LoadError> {
    let header = read_header(path)?;
    let model_err = |message: String| LoadError::Model {
        path: path.to_path_buf(),
        message,
    };
    if header.architecture().is_none() {
        return Err(model_err(
            "the GGUF file names no architecture (general.architecture)".into(),
        ));
    }
    // A progress bar on a terminal (indicatif draws nothing otherwise).
    let bar = indicatif::ProgressBar::new(100).with_style(
        indicatif::ProgressStyle::with_template("loading {msg} [{bar:30}] {percent:>3}%")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let shown = bar.clone();
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(gpu_layers)
        .with_progress_callback(move |p| {
            shown.set_position((p.clamp(0.0, 1.0) * 100.0) as u64);
            true
        });
    let loaded = LlamaModel::load_from_file(backend()?, path, &params);
    bar.finish_and_clear();
    let model = loaded.map_err(|e| {
        model_err(format!(
            "llama.cpp could not load it ({e}); the architecture '{}' may be unsupported by this build, or the file is damaged",
            header.architecture().unwrap_or("?")
        ))
    })?;
    Ok((Box::leak(Box::new(model)), header))
}

/// What the GGUF says about the model.
pub fn model_meta(model: &LlamaModel, header: &GgufHeader, path: &Path) -> ModelMeta {
    let arch = header.architecture().unwrap_or_default().to_string();
    let vocab = model.vocab();
    let token_text = |t: LlamaToken| {
        (t.0 >= 0 && t.0 < model.n_vocab())
            .then(|| {
                vocab
                    .text(t)
                    .and_then(|c| c.to_str().ok())
                    .map(str::to_string)
            })
            .flatten()
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    ModelMeta {
        name: header
            .str("general.name")
            .map(str::to_string)
            .unwrap_or(stem),
        train_context: model.n_ctx_train(),
        chat_template: header.str("tokenizer.chat_template").map(str::to_string),
        bos_token: token_text(vocab.bos()),
        eos_token: token_text(vocab.eos()),
        add_bos: vocab.should_add_bos(),
        vocab_size: usize::try_from(model.n_vocab()).unwrap_or(0),
        architecture: arch,
    }
}

/// The chat template to render prompts with, and the tokens that end a turn
/// beside llama.cpp's own: `--chat-template`, else the GGUF's, else the
/// family's built-in format (by architecture and marker tokens), else ChatML,
/// said at load.
fn chat_format(model: &LlamaModel, meta: &ModelMeta, opts: &LoadOptions) -> (String, Vec<i32>) {
    if let Some(source) = opts
        .chat_template
        .clone()
        .or_else(|| meta.chat_template.clone())
    {
        return (source, Vec::new());
    }
    let file = opts
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let has_token = |t: &str| runner::single_token(model, t).is_some();
    let format = match formats::format_for(&meta.architecture, &has_token) {
        Some(f) => {
            tracing::info!(
                "{file}: no chat template in the GGUF; using the {} format of its family ({} architecture); --chat-template FILE overrides it",
                f.name,
                meta.architecture
            );
            f
        }
        None => {
            tracing::warn!(
                "{file}: no chat template in the GGUF and no known chat format for the {} architecture; using ChatML, which this model may not know (--chat-template FILE gives it its own)",
                meta.architecture
            );
            &formats::CHATML
        }
    };
    let ends = runner::single_token(model, format.end_of_turn)
        .into_iter()
        .collect();
    (format.source.to_string(), ends)
}

/// A model's default sampling, field by field: configuration, else the
/// GGUF's recommendation (`general.sampling.temp`, `.top_p`, `.top_k`, as
/// llama.cpp's converter writes them from `generation_config.json`), else a
/// built-in model's recorded one, else Gemini's 1.0 / 0.95 / 64.
pub fn default_sampling(opts: &LoadOptions, header: &GgufHeader) -> SamplingDefaults {
    let gemini = SamplingDefaults::default();
    let float = |key: &str| {
        header
            .float(key)
            .map(|v| v as f32)
            .filter(|v| v.is_finite())
    };
    let temperature = opts
        .sampling
        .temperature
        .or_else(|| float("general.sampling.temp").filter(|t| (0.0..=2.0).contains(t)))
        .or(opts.recommended_sampling.temperature)
        .unwrap_or(gemini.temperature);
    let top_p = opts
        .sampling
        .top_p
        .or_else(|| float("general.sampling.top_p").filter(|p| *p > 0.0 && *p <= 1.0))
        .or(opts.recommended_sampling.top_p)
        .unwrap_or(gemini.top_p);
    let top_k = opts
        .sampling
        .top_k
        .or_else(|| {
            header
                .int("general.sampling.top_k")
                .and_then(|k| u32::try_from(k).ok())
                .filter(|k| *k >= 1)
        })
        .or(opts.recommended_sampling.top_k)
        .unwrap_or(gemini.top_k);
    SamplingDefaults {
        temperature,
        top_p,
        top_k,
    }
}

/// What `GET models/{id}` says of a model: its name, family and size, from
/// the GGUF's own metadata.
fn describe(meta: &ModelMeta, header: &GgufHeader) -> String {
    let mut facts = vec![format!("{} architecture", meta.architecture)];
    if let Some(size) = header.str("general.size_label") {
        facts.push(format!("{size} parameters"));
    }
    if let Some(q) = header.file_type_name() {
        facts.push(q.to_string());
    }
    format!(
        "{} ({}), served by hearth on llama.cpp",
        meta.name,
        facts.join(", ")
    )
}

/// Loads a model and starts its engine.
pub fn load_engine(opts: &LoadOptions) -> Result<LlmEngine, LoadError> {
    let (model, header) = load_model(&opts.path, opts.gpu_layers)?;
    let meta = model_meta(model, &header, &opts.path);
    let (source, ends) = chat_format(model, &meta, opts);
    let template = ChatTemplate::new(
        &source,
        meta.bos_token.as_deref().unwrap_or(""),
        meta.eos_token.as_deref().unwrap_or(""),
    )
    .map_err(|e| LoadError::Model {
        path: opts.path.clone(),
        message: format!("its chat template does not compile: {e}"),
    })?;
    let stem = opts
        .path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_lowercase();
    let id = opts.id.clone().unwrap_or(stem);
    let config = LlmEngineConfig {
        display_name: meta.name.clone(),
        // The model, never the disk: clients must not learn the server's paths.
        description: describe(&meta, &header),
        id,
        max_output_tokens: opts.max_output_tokens,
        prefill_chunk: opts
            .step_tokens
            .unwrap_or(opts.context.batch)
            .clamp(1, opts.context.batch.max(1)) as usize,
        queue_limit: opts.queue_limit,
        max_thinking_tokens: opts.max_thinking_tokens,
        sampling: default_sampling(opts, &header),
        jump_forward: opts.jump_forward,
        speculate: opts.speculate,
    };
    let mut ctx = opts.context;
    ctx.ctx_per_sequence = ctx.ctx_per_sequence.min(meta.train_context.max(1));
    let backend = backend()?;
    let projector = match &opts.mmproj {
        Some(path) => {
            tracing::info!("loading the multimodal projector {}", path.display());
            Some(
                media::Projector::load(path, model, ctx.threads).map_err(|message| {
                    LoadError::Model {
                        path: path.clone(),
                        message,
                    }
                })?,
            )
        }
        None => None,
    };
    let runner_projector = projector.clone();
    let on_cpu = opts.gpu_layers == 0;
    let factory: RunnerFactory = Box::new(move || {
        LlamaRunner::new(model, backend, ctx).map(|r| {
            let r = if on_cpu { r.on_cpu() } else { r };
            let r = match runner_projector.clone() {
                Some(p) => r.with_projector(p),
                None => r,
            };
            Box::new(r) as Box<dyn Runner>
        })
    });
    let tokenizer = Arc::new(LlamaTokenizer::new(model, meta).with_ends(&ends));
    let engine = LlmEngine::start(config, tokenizer, Arc::new(template), factory)
        .map_err(|e| LoadError::Engine(e.to_string()))?;
    Ok(match projector {
        Some(p) => engine.with_media(p),
        None => engine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gguf::MetaValue;

    fn header(pairs: &[(&str, MetaValue)]) -> GgufHeader {
        GgufHeader {
            version: 3,
            tensor_count: 0,
            metadata: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn default_sampling_is_configuration_then_gguf_then_recommendation_then_gemini() {
        let mut opts = LoadOptions::new("m.gguf");
        let none = header(&[]);
        assert_eq!(default_sampling(&opts, &none), SamplingDefaults::default());
        let gguf = header(&[
            ("general.sampling.temp", MetaValue::Float(0.6)),
            ("general.sampling.top_p", MetaValue::Float(0.8)),
            ("general.sampling.top_k", MetaValue::Int(20)),
        ]);
        let s = default_sampling(&opts, &gguf);
        assert_eq!((s.temperature, s.top_p, s.top_k), (0.6, 0.8, 20));
        opts.recommended_sampling = SamplingChoice {
            temperature: Some(0.2),
            top_p: Some(0.9),
            top_k: None,
        };
        let s = default_sampling(&opts, &none);
        assert_eq!((s.temperature, s.top_p, s.top_k), (0.2, 0.9, 64));
        assert_eq!(default_sampling(&opts, &gguf).temperature, 0.6);
        opts.sampling.temperature = Some(0.0);
        opts.sampling.top_k = Some(5);
        let s = default_sampling(&opts, &gguf);
        assert_eq!((s.temperature, s.top_p, s.top_k), (0.0, 0.8, 5));
        // Out-of-range metadata is ignored.
        let bad = header(&[("general.sampling.temp", MetaValue::Float(7.0))]);
        assert_eq!(
            default_sampling(&LoadOptions::new("m.gguf"), &bad).temperature,
            1.0
        );
    }
}
