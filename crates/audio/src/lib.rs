//! Audio in: decode, resample to 16 kHz mono, log-mel (spec §4.1–§4.3).
#![deny(missing_docs)]
