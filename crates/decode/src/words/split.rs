//! Tokens → words (spec §7.3 `split_to_word_tokens`) and faster-whisper's
//! punctuation merging (§7.4 step 3).
//!
//! The splitting functions take the text decoder as a closure so they can be
//! tested without a tokenizer; in use it is
//! `Tokenizer::decode_with_timestamps`.
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/tokenizer.py`
//! (`Tokenizer.split_to_word_tokens`, `split_tokens_on_unicode`, `split_tokens_on_spaces`) and
//! `faster_whisper/transcribe.py` (`merge_punctuations`).

/// Python's `string.punctuation`.
const ASCII_PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Languages written without spaces between words (split on unicode only).
const UNICODE_SPLIT_LANGUAGES: [&str; 6] = ["zh", "ja", "th", "lo", "my", "yue"];

/// A word and the tokens it was decoded from.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTokens {
    /// The decoded text (leading space kept).
    pub word: String,
    /// Its tokens.
    pub tokens: Vec<u32>,
}

/// Cut `tokens` into the shortest pieces that decode to whole characters:
/// a piece ends when its decoding has no U+FFFD, or when its U+FFFD is also
/// in the decoding of the whole list at the same character offset (a
/// genuine replacement character, not a cut UTF-8 sequence).
pub fn split_on_unicode(tokens: &[u32], decode: &dyn Fn(&[u32]) -> String) -> Vec<WordTokens> {
    const REPLACEMENT: char = '\u{fffd}';
    let full: Vec<char> = decode(tokens).chars().collect();
    let mut out = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut offset = 0usize;
    for &t in tokens {
        current.push(t);
        let decoded = decode(&current);
        let cut = match decoded.chars().position(|c| c == REPLACEMENT) {
            None => true,
            Some(i) => full.get(i + offset) == Some(&REPLACEMENT),
        };
        if cut {
            offset += decoded.chars().count();
            out.push(WordTokens {
                word: decoded,
                tokens: std::mem::take(&mut current),
            });
        }
    }
    out
}

/// Unicode pieces glued into words: a piece starts a new word if it is a
/// special token (`≥ eot`), begins with a space, is punctuation (its
/// stripped text is a substring of `string.punctuation`, as Python's `in`
/// tests it), or is the first piece.
pub fn split_on_spaces(
    tokens: &[u32],
    eot: u32,
    decode: &dyn Fn(&[u32]) -> String,
) -> Vec<WordTokens> {
    let mut words: Vec<WordTokens> = Vec::new();
    for piece in split_on_unicode(tokens, decode) {
        let special = piece.tokens.first().is_some_and(|&t| t >= eot);
        let with_space = piece.word.starts_with(' ');
        let punctuation = ASCII_PUNCTUATION.contains(piece.word.trim());
        match words.last_mut() {
            Some(last) if !(special || with_space || punctuation) => {
                last.word.push_str(&piece.word);
                last.tokens.extend(piece.tokens);
            }
            _ => words.push(piece),
        }
    }
    words
}

/// faster-whisper's `split_to_word_tokens`: unicode pieces for languages
/// without spaces, words split on spaces otherwise.
pub fn split_to_word_tokens(
    tokens: &[u32],
    language: &str,
    eot: u32,
    decode: &dyn Fn(&[u32]) -> String,
) -> Vec<WordTokens> {
    if UNICODE_SPLIT_LANGUAGES.contains(&language) {
        split_on_unicode(tokens, decode)
    } else {
        split_on_spaces(tokens, eot, decode)
    }
}

/// A word of the alignment (before it is assigned to a segment).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    /// Text; empty once merged into a neighbour.
    pub word: String,
    /// Tokens; empty once merged into a neighbour.
    pub tokens: Vec<u32>,
    /// Start in seconds from the window start.
    pub start: f64,
    /// End in seconds from the window start.
    pub end: f64,
    /// Mean probability of the word's own tokens.
    pub probability: f64,
}

/// Merge punctuation into the neighbouring words (spec §7.4 step 3): marks of
/// `prepended` that stand alone after a space go to the following word,
/// marks of `appended` to the previous word. Membership is Python's
/// substring test (`word in marks`). Merged-away words are left empty (text
/// and tokens) but keep their times; probabilities are not recomputed.
pub fn merge_punctuations(words: &mut [TimedWord], prepended: &str, appended: &str) {
    let n = words.len();
    if n >= 2 {
        let mut j = n - 1;
        for i in (0..n - 1).rev() {
            if words[i].word.starts_with(' ') && prepended.contains(words[i].word.trim()) {
                let prev_word = std::mem::take(&mut words[i].word);
                let mut prev_tokens = std::mem::take(&mut words[i].tokens);
                let following = &mut words[j];
                following.word.insert_str(0, &prev_word);
                prev_tokens.append(&mut following.tokens);
                following.tokens = prev_tokens;
            } else {
                j = i;
            }
        }
    }
    let mut i = 0;
    for j in 1..n {
        if !words[i].word.ends_with(' ') && appended.contains(words[j].word.as_str()) {
            let word = std::mem::take(&mut words[j].word);
            let tokens = std::mem::take(&mut words[j].tokens);
            words[i].word.push_str(&word);
            words[i].tokens.extend(tokens);
        } else {
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy byte-level vocabulary: token id = index into `VOCAB`, decoded
    /// as the concatenated bytes with lossy UTF-8 (like the BPE decoder);
    /// ids ≥ 100 are special and decode to nothing.
    const VOCAB: [&[u8]; 10] = [
        b" Hello",
        b",",
        b" wor",
        b"ld",
        b"!",
        b" \xe4\xbd",    // first two bytes of 你
        b"\xa0",         // its last byte
        b"\xe5\xa5\xbd", // 好
        b" (",
        b"\xff", // a genuinely invalid byte
    ];

    fn decode(ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .filter(|&&t| t < 100)
            .flat_map(|&t| VOCAB[t as usize].iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn words(v: &[WordTokens]) -> Vec<&str> {
        v.iter().map(|w| w.word.as_str()).collect()
    }

    #[test]
    fn unicode_pieces_wait_for_whole_characters() {
        let p = split_on_unicode(&[5, 6, 7, 100], &decode);
        assert_eq!(words(&p), vec![" 你", "好", ""]);
        assert_eq!(p[0].tokens, vec![5, 6]);
        // A real U+FFFD (an invalid byte in the full text) still cuts.
        let p = split_on_unicode(&[0, 9, 3], &decode);
        assert_eq!(words(&p), vec![" Hello", "\u{fffd}", "ld"]);
    }

    #[test]
    fn space_splitting_glues_subwords_and_cuts_punctuation() {
        let w = split_to_word_tokens(&[0, 1, 2, 3, 4, 100], "en", 100, &decode);
        assert_eq!(words(&w), vec![" Hello", ",", " world", "!", ""]);
        assert_eq!(w[2].tokens, vec![2, 3]);
        // Languages without spaces keep the unicode pieces.
        let w = split_to_word_tokens(&[5, 6, 7, 100], "zh", 100, &decode);
        assert_eq!(words(&w), vec![" 你", "好", ""]);
        // In English the same tokens glue after the spaced piece.
        let w = split_to_word_tokens(&[5, 6, 7, 100], "en", 100, &decode);
        assert_eq!(words(&w), vec![" 你好", ""]);
    }

    fn timed(list: &[(&str, &[u32])]) -> Vec<TimedWord> {
        list.iter()
            .enumerate()
            .map(|(i, (w, t))| TimedWord {
                word: w.to_string(),
                tokens: t.to_vec(),
                start: i as f64,
                end: i as f64 + 1.0,
                probability: 0.5,
            })
            .collect()
    }

    #[test]
    fn punctuation_merges_both_ways() {
        let prepend = "\"'“¿([{-";
        let append = "\"'.。,，!！?？:：”)]}、";
        let mut w = timed(&[
            (" (", &[8]),
            (" Hello", &[0]),
            (",", &[1]),
            (" world", &[2, 3]),
            ("!", &[4]),
            (" \"", &[10]),
        ]);
        merge_punctuations(&mut w, prepend, append);
        let got: Vec<(&str, &[u32])> = w
            .iter()
            .map(|x| (x.word.as_str(), x.tokens.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("", &[][..]),
                (" ( Hello,", &[8, 0, 1][..]),
                ("", &[][..]),
                (" world!", &[2, 3, 4][..]),
                ("", &[][..]),
                // The last word has no following word to prepend to.
                (" \"", &[10][..]),
            ]
        );
        // Times stay with the slots.
        assert_eq!((w[1].start, w[1].end), (1.0, 2.0));
        // A word ending with a space takes no appended mark.
        let mut w = timed(&[(" a ", &[1]), (".", &[2])]);
        merge_punctuations(&mut w, prepend, append);
        assert_eq!(w[1].word, ".");
        // Substring semantics: "!?" is not in the set as a run, "。" is.
        let mut w = timed(&[(" a", &[1]), ("!?", &[2]), ("。", &[3])]);
        merge_punctuations(&mut w, prepend, append);
        assert_eq!(w[0].word, " a");
        assert_eq!(w[1].word, "!?。");
    }
}
