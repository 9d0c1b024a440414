//! Response bodies in OpenAI's shapes.

use crate::request::{AudioRequest, ResponseFormat};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use vkwhisper::output::{writer_for, OutputFormat};
use vkwhisper::{Segment, Task, TranscriptionInfo};

/// Whisper's language names by code (OpenAI's `verbose_json` gives the
/// lower-case name, e.g. "english").
const NAMES: [(&str, &str); 100] = [
    ("en", "english"),
    ("zh", "chinese"),
    ("de", "german"),
    ("es", "spanish"),
    ("ru", "russian"),
    ("ko", "korean"),
    ("fr", "french"),
    ("ja", "japanese"),
    ("pt", "portuguese"),
    ("tr", "turkish"),
    ("pl", "polish"),
    ("ca", "catalan"),
    ("nl", "dutch"),
    ("ar", "arabic"),
    ("sv", "swedish"),
    ("it", "italian"),
    ("id", "indonesian"),
    ("hi", "hindi"),
    ("fi", "finnish"),
    ("vi", "vietnamese"),
    ("he", "hebrew"),
    ("uk", "ukrainian"),
    ("el", "greek"),
    ("ms", "malay"),
    ("cs", "czech"),
    ("ro", "romanian"),
    ("da", "danish"),
    ("hu", "hungarian"),
    ("ta", "tamil"),
    ("no", "norwegian"),
    ("th", "thai"),
    ("ur", "urdu"),
    ("hr", "croatian"),
    ("bg", "bulgarian"),
    ("lt", "lithuanian"),
    ("la", "latin"),
    ("mi", "maori"),
    ("ml", "malayalam"),
    ("cy", "welsh"),
    ("sk", "slovak"),
    ("te", "telugu"),
    ("fa", "persian"),
    ("lv", "latvian"),
    ("bn", "bengali"),
    ("sr", "serbian"),
    ("az", "azerbaijani"),
    ("sl", "slovenian"),
    ("kn", "kannada"),
    ("et", "estonian"),
    ("mk", "macedonian"),
    ("br", "breton"),
    ("eu", "basque"),
    ("is", "icelandic"),
    ("hy", "armenian"),
    ("ne", "nepali"),
    ("mn", "mongolian"),
    ("bs", "bosnian"),
    ("kk", "kazakh"),
    ("sq", "albanian"),
    ("sw", "swahili"),
    ("gl", "galician"),
    ("mr", "marathi"),
    ("pa", "punjabi"),
    ("si", "sinhala"),
    ("km", "khmer"),
    ("sn", "shona"),
    ("yo", "yoruba"),
    ("so", "somali"),
    ("af", "afrikaans"),
    ("oc", "occitan"),
    ("ka", "georgian"),
    ("be", "belarusian"),
    ("tg", "tajik"),
    ("sd", "sindhi"),
    ("gu", "gujarati"),
    ("am", "amharic"),
    ("yi", "yiddish"),
    ("lo", "lao"),
    ("uz", "uzbek"),
    ("fo", "faroese"),
    ("ht", "haitian creole"),
    ("ps", "pashto"),
    ("tk", "turkmen"),
    ("nn", "nynorsk"),
    ("mt", "maltese"),
    ("sa", "sanskrit"),
    ("lb", "luxembourgish"),
    ("my", "myanmar"),
    ("bo", "tibetan"),
    ("tl", "tagalog"),
    ("mg", "malagasy"),
    ("as", "assamese"),
    ("tt", "tatar"),
    ("haw", "hawaiian"),
    ("ln", "lingala"),
    ("ha", "hausa"),
    ("ba", "bashkir"),
    ("jw", "javanese"),
    ("su", "sundanese"),
    ("yue", "cantonese"),
];

/// The lower-case English name of a Whisper language code (the code when unknown).
pub fn language_name(code: &str) -> String {
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| code.to_string(), |(_, n)| n.to_string())
}

/// The transcript text as OpenAI returns it: the segments' texts joined,
/// without the leading space Whisper's tokens carry.
pub fn full_text(segments: &[Segment]) -> String {
    let text: String = segments.iter().map(|s| s.text.as_str()).collect();
    text.trim().to_string()
}

/// `usage` for audio billed by duration.
pub fn usage(info: &TranscriptionInfo) -> Value {
    json!({"type": "duration", "seconds": (info.duration * 1000.0).round() / 1000.0})
}

/// The per-token log probabilities of a transcript (`include[]=logprobs`),
/// as OpenAI gives them: token text, its log probability, its UTF-8 bytes.
/// Whisper's special tokens (timestamps `<|1.23|>`, `<|endoftext|>`) are
/// decoding machinery, not text: OpenAI's lists hold only text tokens.
pub fn logprobs(segments: &[Segment]) -> Value {
    let mut out = Vec::new();
    for s in segments {
        for (token, lp) in s.token_logprobs.iter().flatten() {
            if is_special(token) {
                continue;
            }
            out.push(json!({"token": token, "logprob": lp, "bytes": token.as_bytes()}));
        }
    }
    Value::Array(out)
}

/// A special token's text: `<|…|>` as the tokenizer spells it (no text
/// token of Whisper's vocabulary has that form).
fn is_special(token: &str) -> bool {
    token.len() > 4 && token.starts_with("<|") && token.ends_with("|>")
}

/// The body of a finished transcription.
pub fn render(req: &AudioRequest, info: &TranscriptionInfo, segments: &[Segment]) -> Response {
    match req.format {
        ResponseFormat::Json => {
            let mut body = json!({"text": full_text(segments), "usage": usage(info)});
            if req.logprobs {
                body["logprobs"] = logprobs(segments);
            }
            axum::Json(body).into_response()
        }
        ResponseFormat::Text => plain(
            format!("{}\n", full_text(segments)),
            "text/plain; charset=utf-8",
        ),
        ResponseFormat::Srt => plain(
            subtitles(OutputFormat::Srt, info, segments),
            "text/plain; charset=utf-8",
        ),
        ResponseFormat::Vtt => plain(
            subtitles(OutputFormat::Vtt, info, segments),
            "text/vtt; charset=utf-8",
        ),
        ResponseFormat::VerboseJson => axum::Json(verbose(req, info, segments)).into_response(),
    }
}

fn plain(body: String, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// OpenAI's `verbose_json`: segments unless only words were asked for,
/// words when asked for.
pub fn verbose(req: &AudioRequest, info: &TranscriptionInfo, segments: &[Segment]) -> Value {
    let mut body = json!({
        "task": if req.task == Task::Translate { "translate" } else { "transcribe" },
        "language": language_name(&info.language),
        "duration": info.duration,
        "text": full_text(segments),
    });
    if req.segments {
        body["segments"] = segments
            .iter()
            .map(|s| {
                json!({
                    "id": s.id.saturating_sub(1),
                    "seek": s.seek,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "tokens": s.tokens,
                    "temperature": s.temperature,
                    "avg_logprob": s.avg_logprob,
                    "compression_ratio": s.compression_ratio,
                    "no_speech_prob": s.no_speech_prob,
                })
            })
            .collect();
    }
    if req.words {
        body["words"] = segments
            .iter()
            .flat_map(|s| s.words.iter().flatten())
            .map(|w| json!({"word": w.word.trim(), "start": w.start, "end": w.end}))
            .collect();
    }
    body["usage"] = usage(info);
    body
}

/// A `Write` into a shared buffer, for the writers that take a boxed writer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// srt or vtt, written by the same writers as the command line's files.
fn subtitles(format: OutputFormat, info: &TranscriptionInfo, segments: &[Segment]) -> String {
    let buf = Buffer::default();
    let mut w = writer_for(format, Box::new(buf.clone()));
    for s in segments {
        // In-memory writes cannot fail.
        let _ = w.write_segment(s);
    }
    let _ = w.finish(info);
    drop(w);
    let bytes = std::mem::take(&mut *buf.0.lock().unwrap_or_else(PoisonError::into_inner));
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_whisper_language_has_a_name() {
        for code in vkwhisper::LANGUAGES {
            assert_ne!(language_name(code), code, "{code}");
        }
        assert_eq!(language_name("en"), "english");
    }
}
