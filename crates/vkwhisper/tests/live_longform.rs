//! Issue 16's live acceptance bar, on the shared long-form set (234.5 s,
//! 32 LJ Speech sentences) with tiny.en on the CPU (int8 where the CPU has
//! int8 SIMD, as `vkwhisper listen` runs): the file is fed as if live on
//! the wall clock (each pass's decoding time is charged to the stream's
//! clock), and the committed text must
//!
//! * come with a committed-word latency (`emitted_at − end`) median ≤ 2.0 s
//!   and p90 ≤ 3.3 s,
//! * be within 1.5 WER points of the offline transcript of the same model
//!   (on the zero clock, where the passes' cuts do not depend on timing;
//!   within 3 points on the wall clock),
//! * not end in a repeated phrase, with the buffer never above 30 s;
//!
//! and 60 s of silence and of white noise commit nothing. Latency is "at
//! this machine's speed": the test is alone in its binary so that no other
//! test takes the cores while it runs (about 2 minutes). docs/LIVE.md has
//! the numbers of repeated runs.

use vkw_testkit::{model_dir, percentile, trailing_repeat, vad_model, wer, white_noise};
use vkwhisper::live::{run_virtual, CommitTally, ComputeClock, StreamOptions};
use vkwhisper::{ComputeType, Device, Engine, EngineConfig, TranscribeOptions};

#[test]
fn longform_live_meets_latency_and_wer_bounds_and_stays_silent_on_silence() {
    let (Some(model), Some(_vad)) = (model_dir("tiny.en"), vad_model()) else {
        return;
    };
    // `auto`: int8 where the CPU has int8 SIMD, what `listen` loads.
    let config = EngineConfig::default()
        .with_device(Device::Cpu)
        .with_threads(0)
        .with_compute_type(ComputeType::Auto);
    let engine = Engine::load(model.to_str().expect("utf-8 path"), &config).expect("tiny.en loads");
    let name = "ljspeech_LJ001_0001-0032.wav";
    let file = vkw_testkit::fixtures().join("data/longform").join(name);
    let vkwhisper::Audio::S16(pcm) = vkwhisper::decode_audio(&file).expect("longform decodes")
    else {
        panic!("{}: 16-bit audio expected", file.display());
    };
    let audio: Vec<f32> = pcm.iter().map(|&v| f32::from(v) / 32768.0).collect();
    let reference = vkw_testkit::reference_text("longform", name).expect("longform reference");

    let mut offline = Vec::new();
    engine
        .transcribe(&audio[..], &TranscribeOptions::default(), &mut offline)
        .expect("offline transcript");
    let offline_text: String = offline.iter().map(|s| s.text.as_str()).collect();
    let offline_wer = wer(&reference, &offline_text);

    // Once on the wall clock (latency at this machine's speed) and once on
    // the zero clock (decoding charged nothing: a pass every `min_chunk`,
    // the same cuts on every machine and run, so the text is reproducible).
    let wall = live(&engine, &audio, ComputeClock::Wall);
    let zero = live(&engine, &audio, ComputeClock::Zero);
    let mut lat = wall.latencies.clone();
    let n = lat.len();
    let (med, p90) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.9));
    let (wall_wer, zero_wer) = (wer(&reference, &wall.text), wer(&reference, &zero.text));
    let report = format!(
        "{n} words, latency median {med:.2} s p90 {p90:.2} s, WER {wall_wer:.2} % (zero clock {zero_wer:.2} %) vs offline {offline_wer:.2} %, peak buffer {:.1} s",
        wall.peak_buffer
    );
    eprintln!("live longform: {report}");
    assert!(n > 500, "too few words committed: {report}");
    assert!(med <= 2.0 && p90 <= 3.3, "latency over the bound: {report}");
    // The bound on the reproducible run. On the wall clock, where a
    // pass cuts the audio depends on how long the one before took, and 7
    // runs here gave +0.70 to +1.40 points (docs/LIVE.md): a looser bound
    // there catches a real regression without failing on that spread.
    assert!(
        zero_wer - offline_wer <= 1.5,
        "committed text more than 1.5 WER points worse than offline: {report}\n{}",
        zero.text
    );
    assert!(
        wall_wer - offline_wer <= 3.0,
        "committed text (wall clock) more than 3 WER points worse than offline: {report}\n{}",
        wall.text
    );
    for run in [&wall, &zero] {
        assert!(run.peak_buffer <= 30.0, "buffer over 30 s: {report}");
        assert_eq!(trailing_repeat(&run.text), 0, "repeated tail: {}", run.text);
    }

    for (what, audio) in [
        ("silence", vec![0f32; 16_000 * 60]),
        ("noise", white_noise(16_000 * 60)),
    ] {
        let mut opts = StreamOptions::default();
        opts.clock = ComputeClock::Wall;
        let mut stream = engine.stream(opts).expect("stream");
        let mut tally = CommitTally::default();
        run_virtual(&mut stream, &audio, 0.05, &mut tally).expect("live run");
        let words = tally.words();
        assert_eq!(words, 0, "60 s of {what} committed {words} words");
    }
}

struct Run {
    text: String,
    latencies: Vec<f64>,
    peak_buffer: f64,
}

fn live(engine: &Engine, audio: &[f32], clock: ComputeClock) -> Run {
    let mut opts = StreamOptions::default();
    opts.clock = clock;
    let mut stream = engine.stream(opts).expect("stream");
    let mut tally = CommitTally::default();
    run_virtual(&mut stream, audio, 0.05, &mut tally).expect("live run");
    Run {
        text: tally.text,
        latencies: tally.latencies,
        peak_buffer: stream.peak_buffered(),
    }
}
