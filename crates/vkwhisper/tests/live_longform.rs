//! Issue 16's live acceptance bar, on the shared long-form set (234.5 s,
//! 32 LJ Speech sentences) with tiny.en on the CPU (int8 where the CPU has
//! int8 SIMD, as `vkwhisper listen` runs): the file is fed as if live on
//! the wall clock (each pass's decoding time is charged to the stream's
//! clock), and the committed text must
//!
//! * come with a committed-word latency (`emitted_at − end`) median ≤ 2.0 s
//!   and p90 ≤ 3.3 s,
//! * be within 1.5 WER points of the offline transcript of the same model
//!   (on the zero clock, where the passes' cuts do not depend on timing, at
//!   the median of three phases of those cuts, each phase within 2.5;
//!   within 3 points on the wall clock),
//! * not end in a repeated phrase, with the buffer never above 30 s;
//!
//! and 60 s of silence and of white noise commit nothing. Latency is "at
//! this machine's speed": the test is alone in its binary so that no other
//! test takes the cores while it runs (about 7 minutes). docs/LIVE.md has
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

    let offline_wer = |audio: &[f32]| {
        let mut offline = Vec::new();
        engine
            .transcribe(audio, &TranscribeOptions::default(), &mut offline)
            .expect("offline transcript");
        let text: String = offline.iter().map(|s| s.text.as_str()).collect();
        wer(&reference, &text)
    };

    // On the wall clock: latency at this machine's speed.
    let wall = live(&engine, &audio, ComputeClock::Wall);
    let wall_offline = offline_wer(&audio);
    let mut lat = wall.latencies.clone();
    let n = lat.len();
    let (med, p90) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.9));
    let wall_wer = wer(&reference, &wall.text);
    // On the zero clock (decoding charged nothing: a pass every `min_chunk`
    // of stream time, so a run is reproducible), at three phases of those
    // cuts: the file after 0, 0.3 and 0.6 s of silence, each against the
    // offline transcript of the same audio. One phase is one sample of a
    // chaotic process — where a pass cuts a word decides what it commits —
    // and the ISA's float rounding moves it too: at lead 0 the gap was
    // +1.22 points with AVX-512 and +1.75 with AVX2 only, at 0.6 s +2.09
    // and +1.22 (docs/LIVE.md). So the bar (1.5 points) is held by
    // the median phase, and every phase must stay within 2.5.
    let mut zero_runs = Vec::new();
    for lead_s in [0.0, 0.3, 0.6] {
        let padded = vkw_testkit::with_lead_silence(lead_s, audio.iter().copied());
        let run = live(&engine, &padded, ComputeClock::Zero);
        let off = if lead_s == 0.0 {
            wall_offline
        } else {
            offline_wer(&padded)
        };
        zero_runs.push((lead_s, wer(&reference, &run.text), off, run));
    }
    let gaps: Vec<f64> = zero_runs.iter().map(|(_, w, off, _)| w - off).collect();
    let phases: Vec<String> = zero_runs
        .iter()
        .map(|(lead, w, off, _)| format!("lead {lead} s: {w:.2} % vs offline {off:.2} %"))
        .collect();
    let report = format!(
        "{n} words, latency median {med:.2} s p90 {p90:.2} s, WER {wall_wer:.2} % vs offline {wall_offline:.2} % (wall clock); zero clock {}; peak buffer {:.1} s",
        phases.join(", "),
        wall.peak_buffer
    );
    eprintln!("live longform: {report}");
    if wall_wer - wall_offline > 2.0 {
        // Seen once in ~10 wall-clock runs (+2.97 points, 581 words instead
        // of ~568); kept in the log to find out what it commits then.
        eprintln!("live longform, wall-clock text:\n{}", wall.text);
    }
    assert!(n > 500, "too few words committed: {report}");
    assert!(med <= 2.0 && p90 <= 3.3, "latency over the bound: {report}");
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(
        sorted[1] <= 1.5,
        "committed text more than 1.5 WER points worse than offline at the median phase: {report}"
    );
    for ((lead, _, _, run), gap) in zero_runs.iter().zip(&gaps) {
        assert!(
            *gap <= 2.5,
            "committed text more than 2.5 WER points worse than offline (lead {lead} s): {report}\n{}",
            run.text
        );
    }
    // On the wall clock, where a pass cuts the audio depends on how long the
    // one before took, 7 runs here gave +0.70 to +1.40 points and one later
    // run +2.97 (docs/LIVE.md): a looser bound there catches a real
    // regression without failing on that spread.
    assert!(
        wall_wer - wall_offline <= 3.0,
        "committed text (wall clock) more than 3 WER points worse than offline: {report}\n{}",
        wall.text
    );
    let zero = &zero_runs[0].3;
    for run in [&wall, zero] {
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
