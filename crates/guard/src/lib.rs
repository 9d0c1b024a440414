//! What the parsing crates (`vkw-audio`, `vkw-model`, `vkw-vad`) share to
//! keep a malformed input from ending in a panic or a broken error line:
//!
//! * [`contain`] runs a dependency's parser so that a panic inside it becomes
//!   an error value, with nothing printed (`contain.rs`);
//! * [`one_line`], [`name`] and [`path`] show text that comes from a file, a
//!   path or another program inside a one-line error: control characters
//!   escaped, and cut to a bound where the text is not the user's own
//!   (`text.rs`).

mod contain;
mod text;

pub use contain::contain;
pub use text::{name, one_line, path};
