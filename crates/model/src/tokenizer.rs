//! Text tokenizer and Whisper's special tokens (spec §3.6, §5).

use crate::error::ModelError;
use std::path::Path;

/// Language codes in token-id order (spec §5.2).
pub const LANGUAGES: [&str; 100] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
    "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
    "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
    "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
    "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su", "yue",
];

/// Transcribe or translate (multilingual models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Task {
    /// Speech → text in the spoken language.
    #[default]
    Transcribe,
    /// Speech → English text.
    Translate,
}

/// Special-token ids, looked up by string in the vocabulary (spec §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `<|endoftext|>`.
    pub eot: u32,
    /// `<|startoftranscript|>`.
    pub sot: u32,
    /// `<|translate|>`.
    pub translate: u32,
    /// `<|transcribe|>`.
    pub transcribe: u32,
    /// `<|startoflm|>`.
    pub sot_lm: u32,
    /// `<|startofprev|>`.
    pub sot_prev: u32,
    /// `<|nospeech|>` or `<|nocaptions|>`.
    pub no_speech: u32,
    /// `<|notimestamps|>`.
    pub no_timestamps: u32,
    /// `<|0.00|>`.
    pub timestamp_begin: u32,
    /// The last timestamp token (`V − 1`).
    pub timestamp_end: u32,
    /// Number of language tokens after `sot`.
    pub num_languages: usize,
    /// Whether the model is multilingual (`V ≥ 51865`).
    pub multilingual: bool,
}

/// Encodes text with `tokenizer.json` and decodes ids (spec §5.1).
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    vocab: Vec<String>,
    /// The special-token ids.
    pub special: SpecialTokens,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab.len())
            .field("special", &self.special)
            .finish()
    }
}

fn read_vocabulary(dir: &Path) -> Result<(std::path::PathBuf, Vec<String>), ModelError> {
    let json = dir.join("vocabulary.json");
    let txt = dir.join("vocabulary.txt");
    if json.is_file() {
        let text = std::fs::read_to_string(&json).map_err(|source| ModelError::Io {
            path: json.clone(),
            source,
        })?;
        let v: Vec<String> = serde_json::from_str(&text).map_err(|e| ModelError::BadFile {
            path: json.clone(),
            msg: format!("expected a JSON list of token strings: {e}"),
        })?;
        return Ok((json, v));
    }
    if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(|source| ModelError::Io {
            path: txt.clone(),
            source,
        })?;
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        // CTranslate2 strips a trailing '\r' only when every line has one.
        let all_cr = !lines.is_empty() && lines.iter().all(|l| l.ends_with('\r'));
        let v = lines
            .iter()
            .map(|l| {
                if all_cr {
                    l[..l.len() - 1].to_string()
                } else {
                    l.to_string()
                }
            })
            .collect();
        return Ok((txt, v));
    }
    Err(ModelError::MissingFile {
        path: dir.join("vocabulary.txt"),
        hint: "the model directory needs vocabulary.txt or vocabulary.json",
    })
}

impl Tokenizer {
    /// Load `tokenizer.json` and the vocabulary file of a model directory.
    pub fn load(dir: &Path, n_vocab: usize) -> Result<Self, ModelError> {
        let tk_path = dir.join("tokenizer.json");
        if !tk_path.is_file() {
            return Err(ModelError::MissingFile {
                path: tk_path,
                hint: "copy tokenizer.json from the original Hugging Face model next to model.bin",
            });
        }
        let inner =
            tokenizers::Tokenizer::from_file(&tk_path).map_err(|e| ModelError::BadFile {
                path: tk_path.clone(),
                msg: format!("not a valid tokenizer.json: {e}"),
            })?;
        let (vocab_path, vocab) = read_vocabulary(dir)?;
        Self::from_parts(inner, vocab, &vocab_path, n_vocab)
    }

    /// A tokenizer from a parsed `tokenizer.json` and the full vocabulary
    /// (`vocab_path` names the vocabulary's source in error messages).
    pub(crate) fn from_parts(
        inner: tokenizers::Tokenizer,
        vocab: Vec<String>,
        vocab_path: &Path,
        n_vocab: usize,
    ) -> Result<Self, ModelError> {
        let vocab_path = vocab_path.to_path_buf();
        if vocab.len() != n_vocab {
            return Err(ModelError::BadFile {
                path: vocab_path,
                msg: format!(
                    "{} tokens, but model.bin's embeddings have {n_vocab} rows",
                    vocab.len()
                ),
            });
        }
        let find = |s: &str| vocab.iter().position(|t| t == s).map(|i| i as u32);
        let need = |s: &str| {
            find(s).ok_or_else(|| ModelError::BadFile {
                path: vocab_path.clone(),
                msg: format!("special token {s} not found"),
            })
        };
        let sot = need("<|startoftranscript|>")?;
        let no_timestamps = need("<|notimestamps|>")?;
        let no_speech = find("<|nospeech|>")
            .or_else(|| find("<|nocaptions|>"))
            .ok_or_else(|| ModelError::BadFile {
                path: vocab_path.clone(),
                msg: "special token <|nospeech|> / <|nocaptions|> not found".into(),
            })?;
        let special = SpecialTokens {
            eot: need("<|endoftext|>")?,
            sot,
            translate: need("<|translate|>")?,
            transcribe: need("<|transcribe|>")?,
            sot_lm: need("<|startoflm|>")?,
            sot_prev: need("<|startofprev|>")?,
            no_speech,
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
            timestamp_end: (n_vocab - 1) as u32,
            num_languages: (no_speech as usize).saturating_sub(sot as usize + 5),
            multilingual: n_vocab >= 51865,
        };
        Ok(Self {
            inner,
            vocab,
            special,
        })
    }

    /// Every token string, id order (the contents of `vocabulary.json`).
    pub fn vocabulary(&self) -> &[String] {
        &self.vocab
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The vocabulary string of a token id.
    pub fn token_str(&self, id: u32) -> Option<&str> {
        self.vocab.get(id as usize).map(|s| s.as_str())
    }

    /// Encode text without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    /// Decode text tokens (ids ≥ eot are dropped).
    pub fn decode(&self, ids: &[u32]) -> String {
        let text: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&t| t < self.special.eot)
            .collect();
        self.inner.decode(&text, false).unwrap_or_default()
    }

    /// Decode with `<|t.tt|>` markers for timestamp tokens.
    pub fn decode_with_timestamps(&self, ids: &[u32]) -> String {
        let tb = self.special.timestamp_begin;
        let mut out = String::new();
        let mut run: Vec<u32> = Vec::new();
        for &t in ids {
            if t >= tb {
                out.push_str(&self.decode(&run));
                run.clear();
                out.push_str(&format!("<|{:.2}|>", f64::from(t - tb) * 0.02));
            } else {
                run.push(t);
            }
        }
        out.push_str(&self.decode(&run));
        out
    }

    /// The token of a language code, for multilingual models.
    pub fn language_token(&self, code: &str) -> Option<u32> {
        let id = self
            .vocab
            .iter()
            .position(|t| *t == format!("<|{code}|>"))? as u32;
        let first = self.special.sot + 1;
        (id >= first && id < first + self.special.num_languages as u32).then_some(id)
    }

    /// The language code of a language token.
    pub fn language_code(&self, token: u32) -> Option<&str> {
        let first = self.special.sot + 1;
        if token < first || token >= first + self.special.num_languages as u32 {
            return None;
        }
        let s = self.token_str(token)?;
        s.strip_prefix("<|")?.strip_suffix("|>")
    }

    /// All language codes the model knows, in token order.
    pub fn language_codes(&self) -> Vec<&str> {
        let first = self.special.sot + 1;
        (0..self.special.num_languages as u32)
            .filter_map(|i| self.language_code(first + i))
            .collect()
    }

    /// The SOT sequence (spec §5.3): `[sot]` for English-only models,
    /// `[sot, <|lang|>, task]` for multilingual ones.
    pub fn sot_sequence(&self, language: Option<&str>, task: Task) -> Vec<u32> {
        let mut seq = vec![self.special.sot];
        if self.special.multilingual {
            if let Some(tok) = language.and_then(|l| self.language_token(l)) {
                seq.push(tok);
            }
            seq.push(match task {
                Task::Transcribe => self.special.transcribe,
                Task::Translate => self.special.translate,
            });
        }
        seq
    }

    /// Tokens for symbols that are not speech (spec §6.4), sorted.
    pub fn non_speech_tokens(&self) -> Vec<u32> {
        let singles = "\"#()*+/:;<=>@[\\]^_`{|}~「」『』";
        let multis = [
            "<<",
            ">>",
            "<<<",
            ">>>",
            "--",
            "---",
            "-(",
            "-[",
            "('",
            "(\"",
            "((",
            "))",
            "(((",
            ")))",
            "[[",
            "]]",
            "{{",
            "}}",
            "♪♪",
            "♪♪♪",
        ];
        let musical = ['♩', '♪', '♫', '♬', '♭', '♮', '♯'];
        let mut symbols: Vec<String> = singles.chars().map(String::from).collect();
        symbols.extend(multis.iter().map(|s| s.to_string()));
        let musical_set: Vec<String> = musical.iter().map(|c| c.to_string()).collect();
        symbols.extend(musical_set.iter().cloned());
        let mut out = std::collections::BTreeSet::new();
        for s in [" -", " '"] {
            if let Some(&t) = self
                .encode(s)
                .ok()
                .and_then(|v| v.first().copied())
                .as_ref()
            {
                out.insert(t);
            }
        }
        for sym in &symbols {
            let is_musical = musical_set.contains(sym);
            for text in [sym.clone(), format!(" {sym}")] {
                let Ok(ids) = self.encode(&text) else {
                    continue;
                };
                if ids.len() == 1 || (is_musical && !ids.is_empty()) {
                    out.insert(ids[0]);
                }
            }
        }
        out.into_iter().collect()
    }
}
