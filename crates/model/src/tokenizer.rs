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
///
/// # Guaranteed after load
///
/// [`Tokenizer::load`] (and so `WhisperModel::load`, for CTranslate2 and
/// transformers directories alike) refuses a vocabulary whose special tokens
/// are not in Whisper's layout, so the decoder may rely on the following,
/// where `V` is the vocabulary size (= the rows of the embedding matrix,
/// `V ≤ u32::MAX`) and each token is the *first* vocabulary entry with its
/// string:
///
/// * `eot + 1 == sot`: the text tokens are exactly the ids `0..eot`;
/// * `sot + 1 + num_languages == translate`: the language tokens are the ids
///   `sot + 1 .. translate` (`num_languages` may be 0);
/// * `translate + 1 == transcribe`, `transcribe + 1 == sot_lm`,
///   `sot_lm + 1 == sot_prev`, `sot_prev + 1 == no_speech`,
///   `no_speech + 1 == no_timestamps`;
/// * `timestamp_begin == no_timestamps + 1` and
///   `timestamp_begin <= timestamp_end == V - 1` (at least one timestamp).
///
/// Hence `eot < sot < translate < transcribe < sot_lm < sot_prev < no_speech
/// < no_timestamps < timestamp_begin ≤ timestamp_end < V`: all ids are
/// distinct and in the vocabulary, a difference of two of them taken in this
/// order never wraps, and the closed range `sot..=no_timestamps` holds
/// exactly the task-prefix tokens (sot, languages, tasks, sot_lm, sot_prev,
/// no_speech, no_timestamps), never a text, eot or timestamp token.
/// `num_languages == no_speech − sot − 5` as in spec §5.2, and
/// `multilingual == (V ≥ 51865)`. Every id `tokenizer.json` can produce
/// when encoding text is below `V`, and its ordinary (non-added) tokens are
/// text tokens or eot (`≤ eot`).
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
            msg: format!(
                "expected a JSON list of token strings: {}",
                crate::text::one_line(&e.to_string())
            ),
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

/// Parse a `tokenizer.json`. The text must be JSON before `tokenizers`
/// sees it (a syntax error inside its `decoder` field makes tokenizers 0.22
/// panic), and the parse runs contained (`vkw_guard::contain`).
pub(crate) fn read_tokenizer_json(path: &Path) -> Result<tokenizers::Tokenizer, ModelError> {
    let bad = |msg: String| ModelError::BadFile {
        path: path.to_path_buf(),
        msg: format!("not a valid tokenizer.json: {msg}"),
    };
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| bad(crate::text::one_line(&e.to_string())))?;
    match vkw_guard::contain(|| text.parse::<tokenizers::Tokenizer>()) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(bad(crate::text::one_line(&e.to_string()))),
        Err(panic) => Err(bad(format!("the tokenizer library failed on it: {panic}"))),
    }
}

/// The layout [`SpecialTokens`] documents, or why not (one line).
fn check_layout(sp: &SpecialTokens, n_vocab: usize) -> Result<(), String> {
    let chain = [
        ("<|endoftext|>", u64::from(sp.eot)),
        ("<|startoftranscript|>", u64::from(sp.sot)),
        // The language tokens come here (checked through `translate`).
        ("<|translate|>", u64::from(sp.translate)),
        ("<|transcribe|>", u64::from(sp.transcribe)),
        ("<|startoflm|>", u64::from(sp.sot_lm)),
        ("<|startofprev|>", u64::from(sp.sot_prev)),
        ("the no-speech token", u64::from(sp.no_speech)),
        ("<|notimestamps|>", u64::from(sp.no_timestamps)),
    ];
    let langs = sp.num_languages as u64;
    for pair in chain.windows(2) {
        let ((a, ia), (b, ib)) = (pair[0], pair[1]);
        let gap = if b == "<|translate|>" { 1 + langs } else { 1 };
        if ib != ia + gap {
            return Err(format!(
                "special token {b} has id {ib}, but Whisper's layout puts it at {} \
                 (after {a} at {ia}{}): the vocabulary does not belong to a Whisper model",
                ia + gap,
                if gap > 1 {
                    ", then the language tokens"
                } else {
                    ""
                }
            ));
        }
    }
    if u64::from(sp.no_timestamps) + 1 >= n_vocab as u64 {
        return Err(format!(
            "no timestamp tokens after <|notimestamps|> (id {}, {n_vocab} tokens)",
            sp.no_timestamps
        ));
    }
    Ok(())
}

/// Every id `tokenizer.json` can produce must exist in the model, and its
/// ordinary (BPE) tokens must be text tokens, so that encoded prompts,
/// prefixes and hotwords never turn into control or timestamp tokens.
fn check_tokenizer_ids(
    tk: &tokenizers::Tokenizer,
    sp: &SpecialTokens,
    n_vocab: usize,
) -> Result<(), String> {
    if let Some((tok, id)) = tk.get_vocab(false).into_iter().find(|&(_, id)| id > sp.eot) {
        return Err(format!(
            "token {} has id {id}, past <|endoftext|> ({}): the tokenizer does not belong to this vocabulary",
            crate::text::quote(&tok),
            sp.eot
        ));
    }
    if let Some((tok, id)) = tk
        .get_vocab(true)
        .into_iter()
        .find(|&(_, id)| id as usize >= n_vocab)
    {
        return Err(format!(
            "token {} has id {id}, beyond the model's {n_vocab} tokens",
            crate::text::quote(&tok)
        ));
    }
    Ok(())
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
        let inner = read_tokenizer_json(&tk_path)?;
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
        let bad = |msg: String| ModelError::BadFile {
            path: vocab_path.clone(),
            msg,
        };
        if vocab.len() != n_vocab {
            return Err(bad(format!(
                "{} tokens, but model.bin's embeddings have {n_vocab} rows",
                vocab.len()
            )));
        }
        let n_vocab_u32 = u32::try_from(n_vocab)
            .map_err(|_| bad(format!("{n_vocab} tokens do not fit 32-bit ids")))?;
        let find = |s: &str| vocab.iter().position(|t| t == s).map(|i| i as u32);
        let need = |s: &str| find(s).ok_or_else(|| bad(format!("special token {s} not found")));
        let sot = need("<|startoftranscript|>")?;
        let no_timestamps = need("<|notimestamps|>")?;
        let no_speech = find("<|nospeech|>")
            .or_else(|| find("<|nocaptions|>"))
            .ok_or_else(|| bad("special token <|nospeech|> / <|nocaptions|> not found".into()))?;
        let special = SpecialTokens {
            eot: need("<|endoftext|>")?,
            sot,
            translate: need("<|translate|>")?,
            transcribe: need("<|transcribe|>")?,
            sot_lm: need("<|startoflm|>")?,
            sot_prev: need("<|startofprev|>")?,
            no_speech,
            no_timestamps,
            // Wrapping is harmless here: `check_layout` refuses the layout
            // unless no_timestamps + 1 < V (≤ u32::MAX) and 5 + sot ≤ no_speech.
            timestamp_begin: no_timestamps.wrapping_add(1),
            timestamp_end: n_vocab_u32.wrapping_sub(1),
            num_languages: (no_speech as usize).saturating_sub(sot as usize + 5),
            multilingual: n_vocab >= 51865,
        };
        check_layout(&special, n_vocab).map_err(bad)?;
        check_tokenizer_ids(&inner, &special, n_vocab).map_err(|msg| ModelError::BadFile {
            path: vocab_path.with_file_name("tokenizer.json"),
            msg,
        })?;
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

    /// Encode text without special tokens. (The tokenizer comes from a
    /// file: a panic inside the library is returned as an error.)
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        vkw_guard::contain(|| {
            self.inner
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| crate::text::one_line(&e.to_string()))
        })
        .unwrap_or_else(|panic| Err(format!("the tokenizer failed: {panic}")))
    }

    /// Decode text tokens (ids ≥ eot are dropped); empty if the tokenizer
    /// cannot decode them.
    pub fn decode(&self, ids: &[u32]) -> String {
        let text: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&t| t < self.special.eot)
            .collect();
        vkw_guard::contain(|| self.inner.decode(&text, false).unwrap_or_default())
            .unwrap_or_default()
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
