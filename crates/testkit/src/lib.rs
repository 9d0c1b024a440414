//! Shared helpers for the workspace's tests: where the fixtures are, and the
//! models the fetch script installed.
#![deny(missing_docs)]

use std::path::PathBuf;

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
}

/// The installed model `name` (`$VKWHISPER_CACHE` or `~/.cache/vkwhisper`),
/// or `None` with a message when it is absent locally. Tests never download:
/// in CI (`CI=true`) a missing model is a failure, since `.ci/run` fetches it.
pub fn model_dir(name: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("VKWHISPER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vkwhisper")))?;
    let dir = cache.join("models").join(name);
    if dir.join("model.bin").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "model {name} missing at {}: run scripts/fetch-models.sh",
        dir.display()
    );
    eprintln!("skipping: model {name} not installed (run scripts/fetch-models.sh)");
    None
}

/// The installed Silero VAD model (`<cache>/vad/silero_vad_v6.onnx`), or
/// `None` with a message when it is absent locally; a failure under
/// `CI=true`, like [`model_dir`].
pub fn vad_model() -> Option<PathBuf> {
    let cache = std::env::var_os("VKWHISPER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vkwhisper")))?;
    let file = cache.join("vad").join("silero_vad_v6.onnx");
    if file.is_file() {
        return Some(file);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Silero VAD model missing at {}: run scripts/fetch-models.sh vad",
        file.display()
    );
    eprintln!("skipping: Silero VAD model not installed (run scripts/fetch-models.sh vad)");
    None
}

/// The largest element-wise |a − b| of two equally long slices (logits,
/// activations) compared between backends or paths.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Lower-case words with punctuation removed (apostrophes inside words
/// kept): what word error rates are computed on.
pub fn wer_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .trim_matches('\'')
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate in percent: word-level Levenshtein distance over the
/// reference's word count.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (wer_words(reference), wer_words(hypothesis));
    100.0 * word_edits(&r, &h) as f64 / r.len().max(1) as f64
}

/// Word-level Levenshtein distance (substitutions, insertions, deletions)
/// between reference words `r` and hypothesis words `h`.
pub fn word_edits(r: &[String], h: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()]
}

/// The reference text of `file` in the shared set `set` (its manifest.tsv).
pub fn reference_text(set: &str, file: &str) -> Option<String> {
    let manifest =
        std::fs::read_to_string(fixtures().join("data").join(set).join("manifest.tsv")).ok()?;
    manifest
        .lines()
        .find(|l| l.starts_with(file))
        .and_then(|l| l.split('\t').nth(2))
        .map(str::to_string)
}

/// The `p` quantile (0..=1, nearest rank) of `xs` (sorted in place); NaN
/// when empty.
pub fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    if xs.is_empty() {
        return f64::NAN;
    }
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

/// The longest n (2..=8 words) whose last n words repeat the n before them
/// (a live transcript's looping tail), or 0.
pub fn trailing_repeat(text: &str) -> usize {
    let w = wer_words(text);
    (2..=8)
        .rev()
        .find(|&n| w.len() >= 2 * n && w[w.len() - n..] == w[w.len() - 2 * n..w.len() - n])
        .unwrap_or(0)
}

/// `n` samples of white noise at about −20 dBFS (a fixed seed).
pub fn white_noise(n: usize) -> Vec<f32> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
}

/// `secs` seconds of silence at 16 kHz, then `audio`: the same speech with
/// the live passes' cuts (every `min_chunk` from the start on the zero
/// clock) at another phase (docs/LIVE.md).
pub fn with_lead_silence(secs: f64, audio: impl IntoIterator<Item = f32>) -> Vec<f32> {
    let lead = (secs * 16_000.0).round() as usize;
    std::iter::repeat_n(0.0, lead).chain(audio).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_counts_word_edits() {
        let r = wer_words("Hello, world! It's me.");
        assert_eq!(r, ["hello", "world", "it's", "me"]);
        assert_eq!(word_edits(&r, &wer_words("hello word it's me too")), 2);
        assert_eq!(wer("a b c d", "a x c"), 50.0);
        assert_eq!(wer("Hello, world!", "hello world"), 0.0);
    }
}
