//! What the Vulkan test binaries share.

use vkw_backend::vulkan::{best_adapter, gpu, AdapterDesc};

/// The adapter the tests run on: the one `--device auto` would take among
/// the Vulkan devices. `None` (with a message) where there is none, which
/// fails in CI (`CI=true`), where lavapipe is installed.
pub fn vulkan_adapter() -> Option<AdapterDesc> {
    let list = gpu::enumerate();
    let Some(best) = best_adapter(&list) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Vulkan device in CI: {}",
            vkw_backend::vulkan::no_device_message()
        );
        eprintln!("skipping: no Vulkan device");
        return None;
    };
    Some(best.clone())
}
