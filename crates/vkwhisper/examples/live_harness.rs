//! The live-transcription harness: a file fed as if in real time on a
//! virtual clock (compute time charged to the clock as measured), reporting
//! committed-word latency (emitted_at − word end), WER of the committed text
//! and of the offline transcript against the reference, the largest buffer
//! decoded, a phrase repeated at the end — for both commit policies — plus
//! 60 s of silence and of noise (words committed).
//!
//!     cargo run --release -p vkwhisper --example live_harness -- \
//!         [--clock wall|cpu|zero] [--threads N] [--policy la|alignatt]
//!         [--offline-wer W] [--min-chunk S] [--margin S] [--beam N]
//!         [--final-beam N] [--min-silence-ms MS] [--text-out PREFIX]
//!         [--lead-silence S] [--no-probes]
//!         [--compute-type T] [FILE] [MODEL]
//!
//! `--compute-type` defaults to `auto` (int8 on a CPU with int8 SIMD), as
//! `vkwhisper listen` does.
//!
//! `--min-chunk`, `--margin` (AlignAtt's), `--beam`, `--final-beam` (an
//! utterance's final pass; 0: the passes' beam) and `--min-silence-ms` (the
//! pause that ends an utterance) change the stream's defaults (to try other
//! settings); `--text-out` writes each policy's
//! committed text to `PREFIX.<policy>.txt`.
//!
//! `--lead-silence S` puts S seconds of silence before the file, which moves
//! where the passes cut the speech (`--clock zero`: every `min_chunk` of
//! the stream, whatever decoding costs, so a run is reproducible and the
//! lead silence alone picks the cuts); `--no-probes` skips the silence and
//! noise runs.
//!
//! `--offline-wer` gives the offline transcript's WER (from an earlier run)
//! instead of transcribing the file offline again.
//!
//! `--clock wall` charges elapsed time (inflated when other processes hold
//! the CPU); `--clock cpu` charges the process's CPU time, which with
//! `--threads 1` is the compute time on an idle core whatever the load.

use std::ops::ControlFlow;
use vkwhisper::live::{
    run_virtual, CommitPolicy, CommitTally, ComputeClock, LiveEvent, StreamOptions,
};
use vkwhisper::{ComputeType, Device, Engine, EngineConfig, TranscribeOptions};

use vkw_testkit::{percentile, trailing_repeat, white_noise};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut clock = ComputeClock::Wall;
    let mut threads = 0usize;
    let mut policies = vec![CommitPolicy::LocalAgreement, CommitPolicy::default()];
    let mut known_offline: Option<f64> = None;
    let mut min_chunk: Option<f64> = None;
    let mut margin: Option<f64> = None;
    let mut beam: Option<usize> = None;
    let mut min_silence_ms: Option<u32> = None;
    let mut final_beam: Option<usize> = None;
    let mut text_out: Option<String> = None;
    let mut compute_type = ComputeType::Auto;
    let mut lead_silence = 0f64;
    let mut skip_probes = false;
    let mut rest = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--clock" => {
                clock = match args.next().as_deref() {
                    Some("wall") => ComputeClock::Wall,
                    Some("cpu") => ComputeClock::ProcessCpu,
                    Some("zero") => ComputeClock::Zero,
                    other => return Err(format!("--clock wall|cpu|zero, not {other:?}").into()),
                }
            }
            "--threads" => threads = args.next().ok_or("--threads N")?.parse()?,
            "--policy" => policies = vec![args.next().ok_or("--policy P")?.parse()?],
            "--offline-wer" => known_offline = Some(args.next().ok_or("--offline-wer W")?.parse()?),
            "--min-chunk" => min_chunk = Some(args.next().ok_or("--min-chunk S")?.parse()?),
            "--margin" => margin = Some(args.next().ok_or("--margin S")?.parse()?),
            "--beam" => beam = Some(args.next().ok_or("--beam N")?.parse()?),
            "--final-beam" => {
                final_beam = Some(
                    args.next()
                        .ok_or("--final-beam N (0: the passes' beam)")?
                        .parse()?,
                )
            }
            "--min-silence-ms" => {
                min_silence_ms = Some(args.next().ok_or("--min-silence-ms MS")?.parse()?)
            }
            "--lead-silence" => lead_silence = args.next().ok_or("--lead-silence S")?.parse()?,
            "--no-probes" => skip_probes = true,
            "--text-out" => text_out = Some(args.next().ok_or("--text-out PREFIX")?),
            "--compute-type" => compute_type = args.next().ok_or("--compute-type T")?.parse()?,
            _ => rest.push(a),
        }
    }
    let mut rest = rest.into_iter();
    let file = rest.next().unwrap_or_else(|| {
        vkw_testkit::fixtures()
            .join("data/longform/ljspeech_LJ001_0001-0032.wav")
            .display()
            .to_string()
    });
    let model = rest.next().unwrap_or_else(|| "tiny.en".into());
    let config = EngineConfig::default()
        .with_device(Device::Cpu)
        .with_threads(threads)
        .with_compute_type(compute_type);
    let engine = Engine::load(&model, &config)?;
    let vkwhisper::Audio::S16(pcm) = vkwhisper::decode_audio(&file)? else {
        return Err("16-bit audio expected".into());
    };
    // Leading silence shifts where the passes cut the speech (on the zero
    // clock, every `min_chunk` from the start): the same audio, other cuts.
    let audio =
        vkw_testkit::with_lead_silence(lead_silence, pcm.iter().map(|&v| f32::from(v) / 32768.0));
    let name = std::path::Path::new(&file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let reference = vkw_testkit::reference_text("longform", name);
    println!(
        "{name}: {:.1} s, model {model} ({:?}), clock {clock:?}, threads {threads}",
        audio.len() as f64 / 16_000.0,
        engine.info().compute_type,
    );
    let offline_wer = match known_offline {
        Some(w) => Some(w),
        None => {
            let mut offline = Vec::new();
            engine.transcribe(&audio[..], &TranscribeOptions::default(), &mut offline)?;
            let offline_text: String = offline.iter().map(|s| s.text.as_str()).collect();
            if let Some(prefix) = &text_out {
                std::fs::write(format!("{prefix}.offline.txt"), &offline_text)?;
            }
            reference
                .as_ref()
                .map(|r| vkw_testkit::wer(r, &offline_text))
        }
    };
    if let Some(w) = offline_wer {
        println!("offline (beam 5): WER {w:.2} %");
    }
    let policies: Vec<CommitPolicy> = policies
        .into_iter()
        .map(|p| match (p, margin) {
            (CommitPolicy::AlignAtt { .. }, Some(m)) => CommitPolicy::AlignAtt { margin_s: m },
            (p, _) => p,
        })
        .collect();
    for policy in policies {
        let mut opts = StreamOptions::default().with_policy(policy);
        opts.clock = clock;
        if let Some(b) = final_beam {
            opts.final_beam_size = (b > 0).then_some(b);
        }
        if let Some(ms) = min_silence_ms {
            opts.vad.min_silence_duration_ms = ms;
        }
        if let Some(s) = min_chunk {
            opts.min_chunk_s = s;
        }
        if let Some(b) = beam {
            opts.decoding.beam_size = b;
        }
        let mut stream = engine.stream(opts)?;
        let mut tally = CommitTally::default();
        let mut log = String::new();
        let mut sink = |e: &LiveEvent| {
            if text_out.is_some() {
                log.push_str(&format!("{e:?}\n"));
            }
            tally.record(e);
            ControlFlow::Continue(())
        };
        let t0 = std::time::Instant::now();
        run_virtual(&mut stream, &audio, 0.05, &mut sink)?;
        let wall = t0.elapsed().as_secs_f64();
        let CommitTally {
            text,
            latencies: mut lat,
        } = tally;
        let n = lat.len();
        let (med, p90) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.9));
        let wer = reference.as_ref().map(|r| vkw_testkit::wer(r, &text));
        let vs_offline = wer.zip(offline_wer).map(|(a, b)| a - b);
        println!(
            "{policy:?}: {n} words committed, latency median {med:.2} s, p90 {p90:.2} s, WER {:.2} % ({:+.2} points vs offline), peak buffer {:.1} s, repeated tail {} words, {wall:.1} s wall",
            wer.unwrap_or(f64::NAN),
            vs_offline.unwrap_or(f64::NAN),
            stream.peak_buffered(),
            trailing_repeat(&text),
        );
        if let Some(prefix) = &text_out {
            let tag = match policy {
                CommitPolicy::LocalAgreement => "la",
                _ => "alignatt",
            };
            std::fs::write(format!("{prefix}.{tag}.txt"), &text)?;
            std::fs::write(format!("{prefix}.{tag}.events"), &log)?;
        }
    }
    let probes = if skip_probes {
        Vec::new()
    } else {
        vec![
            ("silence", vec![0f32; 16_000 * 60]),
            ("noise", white_noise(16_000 * 60)),
        ]
    };
    for (what, audio) in probes {
        let mut opts = StreamOptions::default();
        opts.clock = clock;
        let mut stream = engine.stream(opts)?;
        let mut tally = CommitTally::default();
        run_virtual(&mut stream, &audio, 0.05, &mut tally)?;
        println!("60 s of {what}: {} words committed", tally.words());
    }
    Ok(())
}
