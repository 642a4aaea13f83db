//! The loaded models and the names that reach them.

use std::sync::Arc;

use hearth_engine::Engine;

/// Maps model names (`models/<name>`) to engines. A name resolves to a
/// loaded model's own id first, then to an alias: an exact name, or a
/// pattern ending in `*` that matches a prefix (`gemini-*`).
pub struct ModelRegistry {
    engines: Vec<Arc<dyn Engine>>,
    aliases: Vec<(String, String)>,
}

impl ModelRegistry {
    /// `engines[0]` is the default model. Without explicit aliases, every
    /// `gemini-*` name reaches it, so the guide's examples run unchanged.
    pub fn new(engines: Vec<Arc<dyn Engine>>) -> Self {
        let aliases = match engines.first() {
            Some(e) => vec![("gemini-*".to_string(), e.info().id.clone())],
            None => Vec::new(),
        };
        ModelRegistry { engines, aliases }
    }

    /// Replaces the aliases: (name or `prefix*` pattern, target model id).
    pub fn with_aliases(mut self, aliases: Vec<(String, String)>) -> Result<Self, String> {
        for (name, target) in &aliases {
            if self.by_id(target).is_none() {
                return Err(format!(
                    "alias {name} points to {target}, which is not loaded"
                ));
            }
        }
        self.aliases = aliases;
        Ok(self)
    }

    pub fn engines(&self) -> &[Arc<dyn Engine>] {
        &self.engines
    }

    fn by_id(&self, id: &str) -> Option<Arc<dyn Engine>> {
        self.engines.iter().find(|e| e.info().id == id).cloned()
    }

    /// Resolves a model name as it appears in a URL (`models/x` or `x`).
    pub fn resolve(&self, name: &str) -> Option<Arc<dyn Engine>> {
        let id = name.strip_prefix("models/").unwrap_or(name);
        if let Some(e) = self.by_id(id) {
            return Some(e);
        }
        let exact = self.aliases.iter().find(|(a, _)| a == id);
        let pattern = || {
            self.aliases.iter().find(|(a, _)| {
                a.strip_suffix('*')
                    .is_some_and(|prefix| id.starts_with(prefix))
            })
        };
        exact
            .or_else(pattern)
            .and_then(|(_, target)| self.by_id(target))
    }
}
