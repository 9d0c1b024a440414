//! Manual check of the real download path:
//! `cargo run --release -p vkw-hub --example pull -- tiny.en base vad`
//! (set VKWHISPER_CACHE to a scratch directory to leave the real cache alone).

use std::io::Write;

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let mut last_pct = None;
    let mut report = |p: vkw_hub::Progress| match p {
        vkw_hub::Progress::Download {
            file,
            done,
            total: Some(total),
        } if total > 0 => {
            let pct = done * 100 / total;
            if last_pct != Some((file.clone(), pct / 10)) {
                last_pct = Some((file.clone(), pct / 10));
                eprintln!("  {file}: {pct}% of {total} B");
            }
        }
        vkw_hub::Progress::Download { .. } => {}
        other => eprintln!("  {other:?}"),
    };
    for name in &names {
        let t = std::time::Instant::now();
        let res = if name == "vad" {
            vkw_hub::pull_vad_into(&vkw_hub::cache_dir(), &mut report)
        } else {
            vkw_hub::pull(name, &mut report)
        };
        match res {
            Ok(p) => println!(
                "{name}: {} ({:.1} s)",
                p.display(),
                t.elapsed().as_secs_f64()
            ),
            Err(e) => {
                println!("{name}: error: {e}");
                std::process::exit(1);
            }
        }
        let _ = std::io::stdout().flush();
    }
}
