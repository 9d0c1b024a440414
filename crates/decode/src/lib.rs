//! Decoding.
#![deny(missing_docs)]
