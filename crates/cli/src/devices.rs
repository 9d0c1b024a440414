//! `vkwhisper devices`: every Vulkan adapter (index, name, vendor, type,
//! backend, driver, float16 and subgroup support, and which many-row matmul
//! the float16 modes get: `coopmat` on matrix cores or the `simt` tiles)
//! and the CPU backend, with the one `--device auto` picks marked.

use anyhow::Result;
use std::process::ExitCode;
use vkwhisper::devices::{auto_adapter, vulkan_adapters};

pub fn run() -> Result<ExitCode> {
    let (list, why) = match vulkan_adapters() {
        Ok(l) => (l, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let auto = auto_adapter(&list).map(|a| a.index);
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!(
        "{:<10} {:<40} {:<8} {:<11} {:<8} {:<28} {:<5} {:<9} {:<7}",
        "DEVICE", "NAME", "VENDOR", "TYPE", "BACKEND", "DRIVER", "F16", "SUBGROUPS", "MATMUL"
    );
    for a in &list {
        let driver = format!("{} {}", a.driver, a.driver_info);
        println!(
            "{:<10} {:<40} {:<8} {:<11} {:<8} {:<28} {:<5} {:<9} {:<7}{}",
            format!("vulkan:{}", a.index),
            a.name,
            a.vendor(),
            a.kind.name(),
            a.backend,
            driver.trim(),
            yes(a.f16),
            yes(a.subgroups),
            a.matmul,
            if auto == Some(a.index) {
                " <- auto"
            } else {
                ""
            }
        );
    }
    println!(
        "{:<10} {:<40} {:<8} {:<11} {:<8} {:<28} {:<5} {:<9} {:<7}{}",
        "cpu",
        "cpu backend",
        "-",
        "cpu",
        "native",
        "-",
        "-",
        "-",
        "gemm",
        if auto.is_none() { " <- auto" } else { "" }
    );
    if let Some(why) = why {
        println!("no Vulkan devices: {why}");
    } else if auto.is_none() {
        println!(
            "auto uses the CPU backend: the only Vulkan devices are software (type cpu), \
             which run slower than the CPU backend; --device vulkan selects them anyway"
        );
    }
    Ok(ExitCode::SUCCESS)
}
