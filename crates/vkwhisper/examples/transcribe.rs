//! Transcribe one file and write its subtitles, streaming each segment as it
//! is decoded.
//!
//!     cargo run --release -p vkwhisper --example transcribe -- samples/jfk.wav [MODEL]

use std::path::Path;
use vkwhisper::output::{open_outputs, MultiSink, OutputFormat, Sink};
use vkwhisper::{
    ControlFlow, Engine, EngineConfig, Progress, Segment, SegmentSink, TranscribeOptions,
};

/// Print each segment and feed the srt writer.
struct Show {
    srt: MultiSink,
}

impl SegmentSink for Show {
    fn segment(&mut self, s: &Segment) -> ControlFlow<()> {
        println!("[{:6.2} -> {:6.2}] {}", s.start, s.end, s.text);
        self.srt.segment(s)
    }

    fn progress(&mut self, p: Progress) -> ControlFlow<()> {
        eprintln!("{:3.0} %", 100.0 * p.fraction());
        ControlFlow::Continue(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or("usage: transcribe FILE [MODEL]")?;
    let model = args.next().unwrap_or_else(|| "tiny.en".into());
    let engine = Engine::load(&model, &EngineConfig::default())?;
    eprintln!("{}", engine.info().device);
    let srt = open_outputs(Path::new("."), Path::new(&file), &[OutputFormat::Srt])?;
    let mut sink = Show {
        srt: MultiSink::new(srt),
    };
    let audio = vkwhisper::decode_audio(&file)?;
    let info = engine.transcribe(audio, &TranscribeOptions::default(), &mut sink)?;
    // The file appears only now, complete.
    sink.srt.finish(&info)?;
    eprintln!(
        "language {} ({:.2}), {:.1} s",
        info.language, info.language_probability, info.duration
    );
    Ok(())
}
