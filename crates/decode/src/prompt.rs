//! The decoder prompt of one window (faster-whisper `get_prompt`, spec §6.1).
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/transcribe.py` (`WhisperModel.get_prompt`).

use crate::DecodeError;
use vkw_model::{SpecialTokens, Tokenizer};

/// faster-whisper's `max_length`: prompt + generated tokens.
pub const MAX_LENGTH: usize = 448;

/// At most this many previous/hotword/prefix tokens (`max_length // 2 − 1`).
const MAX_CONTEXT: usize = MAX_LENGTH / 2 - 1;

/// Encode `" " + text.strip()` and keep at most 223 tokens (§6.1).
pub(crate) fn encode_context(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, DecodeError> {
    let mut ids = tokenizer
        .encode(&format!(" {}", text.trim()))
        .map_err(DecodeError::Tokenizer)?;
    // FW truncates when len >= max_length // 2.
    if ids.len() > MAX_CONTEXT {
        ids.truncate(MAX_CONTEXT);
    }
    Ok(ids)
}

/// The parts of a window prompt.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PromptParts<'a> {
    /// `all_tokens[prompt_reset_since:]` (§6.11).
    pub previous_tokens: &'a [u32],
    /// Encoded hotwords (already truncated), if any.
    pub hotwords: Option<&'a [u32]>,
    /// Encoded prefix (already truncated) for this window, if any.
    pub prefix: Option<&'a [u32]>,
    /// Decode without timestamps.
    pub without_timestamps: bool,
}

/// Assemble the prompt of §6.1 around `sot_sequence`.
pub(crate) fn build_prompt(
    sp: &SpecialTokens,
    sot_sequence: &[u32],
    parts: &PromptParts<'_>,
) -> Vec<u32> {
    let hotwords = if parts.prefix.is_none() {
        parts.hotwords.filter(|h| !h.is_empty())
    } else {
        None
    };
    let mut prompt = Vec::new();
    if !parts.previous_tokens.is_empty() || hotwords.is_some() {
        prompt.push(sp.sot_prev);
        if let Some(hw) = hotwords {
            prompt.extend_from_slice(hw);
        }
        let prev = parts.previous_tokens;
        prompt.extend_from_slice(&prev[prev.len().saturating_sub(MAX_CONTEXT)..]);
    }
    prompt.extend_from_slice(sot_sequence);
    if parts.without_timestamps {
        prompt.push(sp.no_timestamps);
    }
    if let Some(p) = parts.prefix {
        if !parts.without_timestamps {
            prompt.push(sp.timestamp_begin);
        }
        prompt.extend_from_slice(p);
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::tests::special_en;

    #[test]
    fn layouts() {
        let sp = special_en();
        let sot = [sp.sot];
        let p = build_prompt(&sp, &sot, &PromptParts::default());
        assert_eq!(p, vec![sp.sot]);
        let prev: Vec<u32> = (0..300).collect();
        let p = build_prompt(
            &sp,
            &sot,
            &PromptParts {
                previous_tokens: &prev,
                without_timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(p.len(), 1 + 223 + 2);
        assert_eq!(p[0], sp.sot_prev);
        assert_eq!(p[1], 77);
        assert_eq!(&p[224..], &[sp.sot, sp.no_timestamps]);
        // Hotwords only without a prefix; a prefix follows timestamp_begin.
        let hw = [5, 6];
        let pre = [9];
        let p = build_prompt(
            &sp,
            &sot,
            &PromptParts {
                hotwords: Some(&hw),
                prefix: Some(&pre),
                ..Default::default()
            },
        );
        assert_eq!(p, vec![sp.sot, sp.timestamp_begin, 9]);
        let p = build_prompt(
            &sp,
            &sot,
            &PromptParts {
                previous_tokens: &[1],
                hotwords: Some(&hw),
                ..Default::default()
            },
        );
        assert_eq!(p, vec![sp.sot_prev, 5, 6, 1, sp.sot]);
        let p = build_prompt(
            &sp,
            &sot,
            &PromptParts {
                prefix: Some(&pre),
                without_timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(p, vec![sp.sot, sp.no_timestamps, 9]);
    }
}
