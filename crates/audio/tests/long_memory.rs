//! Long inputs in bounded memory: two hours of 16-bit PCM (230 MB) through
//! `MelWindows` never hold the whole spectrogram (another 230 MB) or an f32
//! copy of the samples (460 MB). Peak RSS is read from /proc (Linux only);
//! this file is its own test process, so nothing else inflates it.

use vkw_audio::mel::{Features, MelWindows, N_FRAMES};

/// Peak resident set size of this process in MiB (`VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[test]
fn two_hours_of_pcm_need_no_whole_file_spectrogram() {
    let Some(before) = peak_rss_mb() else {
        eprintln!("no /proc/self/status: skipping the RSS check");
        return;
    };
    // Two hours, mostly silence with a tone burst every 10 minutes (a
    // stand-in for speech: the global maximum must come from somewhere).
    let n = 2 * 3600 * 16_000;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i % (600 * 16_000);
            if t < 16_000 {
                ((t as f32 * 0.2).sin() * 8000.0) as i16
            } else {
                0
            }
        })
        .collect();
    let pcm_mb = (n * 2) as f64 / (1024.0 * 1024.0);
    let mel = MelWindows::from_s16(&samples, 80);
    assert_eq!(mel.n_frames(), n / 160 + 1);
    let mut checksum = 0.0f64;
    for seek in [0, 60_000, 360_000, mel.n_frames() - 1000] {
        let w = mel.window(seek, N_FRAMES, N_FRAMES);
        assert_eq!(w.len(), 80 * N_FRAMES);
        checksum += w.iter().map(|&x| f64::from(x)).sum::<f64>();
    }
    assert!(checksum.is_finite());
    let peak = peak_rss_mb().unwrap_or(f64::INFINITY);
    // The spectrogram alone would be 80 · 720001 · 4 B = 220 MiB, an f32
    // copy of the PCM 440 MiB; allow 60 MiB for the process and the windows.
    let bound = before + pcm_mb + 60.0;
    eprintln!("PCM {pcm_mb:.0} MiB, peak RSS {peak:.0} MiB (start {before:.0}, bound {bound:.0})");
    assert!(
        peak < bound,
        "peak RSS {peak:.0} MiB exceeds {bound:.0} MiB"
    );
}
