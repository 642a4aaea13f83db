//! What the chat-template tests share: the real templates' folder and the
//! fixtures' fixed "now".

use std::path::{Path, PathBuf};

use hearth_engine::template::CivilDateTime;

/// ../shared/fixtures/chat-templates, beside the checkout (not in a lone clone).
pub fn real_templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/chat-templates")
}

/// "now" in the fixtures: 2025-03-14 10:00:00.
pub fn fixed_now() -> CivilDateTime {
    CivilDateTime {
        year: 2025,
        month: 3,
        day: 14,
        hour: 10,
        minute: 0,
        second: 0,
    }
}
