//! Model cache.
#![deny(missing_docs)]
