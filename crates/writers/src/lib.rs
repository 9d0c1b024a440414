//! Transcript writers.
#![deny(missing_docs)]
