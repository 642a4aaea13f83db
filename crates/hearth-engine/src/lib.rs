//! hearth's wire-neutral engine: the request/event contract, sampling and
//! text assembly shared by every engine implementation.

pub mod contract;
pub mod grammar;
pub mod inline_tools;
pub mod output;
pub mod prompt_format;
pub mod sampler;
pub mod template;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;

pub use contract::*;
pub mod llm;
mod replies;
pub mod runner;
mod scheduler;
#[cfg(feature = "testing")]
pub mod test_runner;
