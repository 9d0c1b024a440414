//! Every version-sensitive wgpu call lives here: instance, adapter and device
//! creation, buffers and their mapping, pipelines, command recording, submit
//! and poll. The ops (`ops/*.rs`) only describe kernels and dispatches, so a
//! wgpu upgrade (the version is pinned in Cargo.toml) touches this file only.

pub use crate::any::{AdapterDesc, DeviceKind};
use crate::BackendError;
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};

fn instance() -> wgpu::Instance {
    // Mesa's implicit device-select layer only reorders adapters (vkwhisper
    // chooses its own, see `any::auto_adapter`), and without a display it
    // prints "error: XDG_RUNTIME_DIR is invalid" through libwayland at every
    // enumeration. Disable it for this process unless the user set its
    // variable. Done once, before the first Vulkan call, so no Vulkan thread
    // reads the environment meanwhile.
    static QUIET_LAYER: std::sync::Once = std::sync::Once::new();
    QUIET_LAYER.call_once(|| {
        if std::env::var_os("NODEVICE_SELECT").is_none() {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    });
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN;
    desc.flags = wgpu::InstanceFlags::empty();
    wgpu::Instance::new(desc)
}

fn adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::VULKAN))
}

fn describe(index: usize, a: &wgpu::Adapter) -> AdapterDesc {
    let info = a.get_info();
    let f = a.features();
    AdapterDesc {
        index,
        name: info.name,
        vendor_id: info.vendor,
        kind: match info.device_type {
            wgpu::DeviceType::DiscreteGpu => DeviceKind::Discrete,
            wgpu::DeviceType::IntegratedGpu => DeviceKind::Integrated,
            wgpu::DeviceType::VirtualGpu => DeviceKind::Virtual,
            wgpu::DeviceType::Cpu => DeviceKind::Cpu,
            wgpu::DeviceType::Other => DeviceKind::Other,
        },
        backend: format!("{:?}", info.backend).to_lowercase(),
        driver: info.driver,
        driver_info: info.driver_info,
        f16: f.contains(wgpu::Features::SHADER_F16),
        subgroups: f.contains(wgpu::Features::SUBGROUP),
    }
}

/// Every Vulkan adapter, in the loader's order (the `N` of `vulkan:N`).
pub fn enumerate() -> Vec<AdapterDesc> {
    adapters()
        .iter()
        .enumerate()
        .map(|(i, a)| describe(i, a))
        .collect()
}

/// How a storage buffer is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    Write,
}

/// A compiled compute pipeline with its bind group layout: storage buffers
/// at bindings `0..n` (as `access` says) and the op's uniform params at `n`.
pub struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    access: Vec<Access>,
}

/// A buffer on the device, in 4-byte words.
#[derive(Clone, Debug)]
pub struct Buf {
    buf: wgpu::Buffer,
    /// Size in bytes.
    pub bytes: u64,
}

enum Cmd {
    Dispatch {
        kernel: Arc<Kernel>,
        bufs: Vec<wgpu::Buffer>,
        params: u64,
        params_size: u64,
        groups: [u32; 3],
    },
    Copy {
        src: wgpu::Buffer,
        src_off: u64,
        dst: wgpu::Buffer,
        dst_off: u64,
        size: u64,
    },
}

/// Commands of one submission, recorded lazily: the params of all
/// dispatches go to one uniform buffer created at submit, each dispatch
/// binding its own 256-byte-aligned slice.
pub struct Recorder {
    cmds: Vec<Cmd>,
    params: Vec<u8>,
    align: usize,
}

impl Recorder {
    /// Dispatch `kernel` over `groups` workgroups with `bufs` bound in order.
    pub fn dispatch(
        &mut self,
        kernel: &Arc<Kernel>,
        bufs: &[&Buf],
        params: &[u8],
        groups: [u32; 3],
    ) {
        debug_assert_eq!(bufs.len(), kernel.access.len());
        let off = self.params.len();
        self.params.extend_from_slice(params);
        let padded = off + params.len().div_ceil(self.align).max(1) * self.align;
        self.params.resize(padded, 0);
        if groups.contains(&0) {
            return;
        }
        self.cmds.push(Cmd::Dispatch {
            kernel: kernel.clone(),
            bufs: bufs.iter().map(|b| b.buf.clone()).collect(),
            params: off as u64,
            params_size: (padded - off) as u64,
            groups,
        });
    }

    /// Copy `size` bytes between buffers.
    pub fn copy(&mut self, src: &Buf, src_off: u64, dst: &Buf, dst_off: u64, size: u64) {
        if size > 0 {
            self.cmds.push(Cmd::Copy {
                src: src.buf.clone(),
                src_off,
                dst: dst.buf.clone(),
                dst_off,
                size,
            });
        }
    }
}

/// An opened Vulkan device with its pipeline cache.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// The adapter.
    pub desc: AdapterDesc,
    /// Float16 weights can be read natively.
    pub f16: bool,
    limits: wgpu::Limits,
    pipelines: Mutex<HashMap<(&'static str, String), Arc<Kernel>>>,
    /// First uncaptured device error since the last check.
    error: Arc<Mutex<Option<BackendError>>>,
    /// Staging buffer for read-backs, reused across steps.
    staging: Mutex<Option<wgpu::Buffer>>,
}

fn device_error(e: wgpu::Error) -> BackendError {
    match e {
        wgpu::Error::OutOfMemory { source } => {
            BackendError::OutOfMemory(format!("the GPU ran out of memory ({source})"))
        }
        wgpu::Error::Validation { description, .. } => {
            BackendError::Device(format!("Vulkan device error: {description}"))
        }
        wgpu::Error::Internal { description, .. } => {
            BackendError::Device(format!("Vulkan internal error: {description}"))
        }
    }
}

impl Gpu {
    /// Open adapter `index` (in [`enumerate`]'s order).
    pub fn open(index: usize) -> Result<Self, BackendError> {
        let list = adapters();
        if list.is_empty() {
            return Err(BackendError::Device(super::no_device_message()));
        }
        let adapter = list.get(index).ok_or_else(|| {
            BackendError::Device(format!(
                "there is no Vulkan device {index}: {} found (see `vkwhisper devices`)",
                list.len()
            ))
        })?;
        let desc = describe(index, adapter);
        let f16 = desc.f16;
        let mut features = wgpu::Features::empty();
        if f16 {
            features |= wgpu::Features::SHADER_F16;
        }
        // Ask for everything the adapter offers: a model's embedding matrix
        // (51k × d) exceeds WebGPU's default 128 MiB binding limit on large
        // models, and some adapters are below WebGPU's other defaults.
        let limits = adapter.limits();
        let dd = wgpu::DeviceDescriptor {
            label: Some("vkwhisper"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&dd)).map_err(|e| {
            BackendError::Device(format!("cannot open Vulkan device {}: {e}", desc.name))
        })?;
        let error: Arc<Mutex<Option<BackendError>>> = Arc::new(Mutex::new(None));
        let slot = error.clone();
        // The default handler panics; keep the first error and report it
        // from the next submit instead.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut s) = slot.lock() {
                if s.is_none() {
                    *s = Some(device_error(e));
                }
            }
        }));
        Ok(Self {
            device,
            queue,
            desc,
            f16,
            limits,
            pipelines: Mutex::new(HashMap::new()),
            error,
            staging: Mutex::new(None),
        })
    }

    fn check(&self) -> Result<(), BackendError> {
        match self.error.lock() {
            Ok(mut s) => s.take().map_or(Ok(()), Err),
            Err(_) => Err(BackendError::Device("Vulkan error state poisoned".into())),
        }
    }

    /// A new recorder.
    pub fn recorder(&self) -> Recorder {
        Recorder {
            cmds: Vec::new(),
            params: Vec::new(),
            align: self.limits.min_uniform_buffer_offset_alignment.max(16) as usize,
        }
    }

    /// The compiled kernel `entry` of `source` (built once, cached under
    /// `(op, variant)`).
    pub fn kernel(
        &self,
        op: &'static str,
        variant: &str,
        source: impl FnOnce() -> String,
        entry: &str,
        access: &[Access],
    ) -> Result<Arc<Kernel>, BackendError> {
        let key = (op, format!("{variant}/{entry}"));
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| BackendError::Device("pipeline cache poisoned".into()))?;
        if let Some(k) = cache.get(&key) {
            return Ok(k.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(op),
                source: wgpu::ShaderSource::Wgsl(source().into()),
            });
        let mut entries: Vec<wgpu::BindGroupLayoutEntry> = access
            .iter()
            .enumerate()
            .map(|(i, a)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *a == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: access.len() as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(op),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(op),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(op),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(BackendError::Device(format!(
                "Vulkan kernel {op}/{variant}/{entry} failed to build: {e}"
            )));
        }
        let k = Arc::new(Kernel {
            pipeline,
            layout,
            access: access.to_vec(),
        });
        cache.insert(key, k.clone());
        Ok(k)
    }

    /// A zero-initialised storage buffer of `bytes` bytes.
    pub fn alloc(&self, bytes: u64, label: &str) -> Result<Buf, BackendError> {
        let bytes = bytes.max(4).next_multiple_of(4);
        let max = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > max {
            return Err(BackendError::OutOfMemory(format!(
                "{label} needs a {} MiB buffer; {} allows {} MiB",
                bytes >> 20,
                self.desc.name,
                max >> 20
            )));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(BackendError::OutOfMemory(format!(
                "{label} ({} MiB) does not fit on {}: {e}",
                bytes >> 20,
                self.desc.name
            )));
        }
        Ok(Buf { buf, bytes })
    }

    /// Upload raw bytes (padded to 4) into a new storage buffer.
    pub fn upload(&self, data: &[u8], label: &str) -> Result<Buf, BackendError> {
        let b = self.alloc(data.len() as u64, label)?;
        self.write(&b, 0, data);
        Ok(b)
    }

    /// Upload f32 values.
    pub fn upload_f32(&self, data: &[f32], label: &str) -> Result<Buf, BackendError> {
        self.upload(bytemuck::cast_slice(data), label)
    }

    /// Write bytes into a buffer before the next submit's commands run.
    pub fn write(&self, b: &Buf, offset: u64, data: &[u8]) {
        let n = data.len() / 4 * 4;
        if n > 0 {
            self.queue.write_buffer(&b.buf, offset, &data[..n]);
        }
        if n < data.len() {
            let mut tail = [0u8; 4];
            tail[..data.len() - n].copy_from_slice(&data[n..]);
            self.queue.write_buffer(&b.buf, offset + n as u64, &tail);
        }
    }

    fn encode(&self, rec: Recorder) -> Result<wgpu::CommandEncoder, BackendError> {
        let params = if rec.params.is_empty() {
            None
        } else {
            let p = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params"),
                size: rec.params.len() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.queue.write_buffer(&p, 0, &rec.params);
            Some(p)
        };
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        // Consecutive dispatches share one compute pass; copies end it.
        let mut i = 0;
        let cmds = rec.cmds;
        while i < cmds.len() {
            if let Cmd::Copy {
                src,
                src_off,
                dst,
                dst_off,
                size,
            } = &cmds[i]
            {
                enc.copy_buffer_to_buffer(src, *src_off, dst, *dst_off, *size);
                i += 1;
                continue;
            }
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            while let Some(Cmd::Dispatch {
                kernel,
                bufs,
                params: off,
                params_size,
                groups,
            }) = cmds.get(i)
            {
                let Some(p) = &params else {
                    return Err(BackendError::Device("dispatch without params".into()));
                };
                let mut entries: Vec<wgpu::BindGroupEntry> = bufs
                    .iter()
                    .enumerate()
                    .map(|(j, b)| wgpu::BindGroupEntry {
                        binding: j as u32,
                        resource: b.as_entire_binding(),
                    })
                    .collect();
                entries.push(wgpu::BindGroupEntry {
                    binding: bufs.len() as u32,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: p,
                        offset: *off,
                        size: wgpu::BufferSize::new(*params_size),
                    }),
                });
                let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &kernel.layout,
                    entries: &entries,
                });
                pass.set_pipeline(&kernel.pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                i += 1;
            }
        }
        Ok(enc)
    }

    /// Submit the recorded commands (no read-back).
    pub fn submit(&self, rec: Recorder) -> Result<(), BackendError> {
        let enc = self.encode(rec)?;
        self.queue.submit([enc.finish()]);
        self.check()
    }

    /// Submit the recorded commands, then read `len` f32 values of `src`
    /// from element `offset` back to the host (waits for the GPU).
    pub fn submit_read(
        &self,
        rec: Recorder,
        src: &Buf,
        offset: usize,
        len: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        let bytes = (len * 4) as u64;
        let mut staging = self
            .staging
            .lock()
            .map_err(|_| BackendError::Device("staging buffer poisoned".into()))?;
        if staging.as_ref().is_none_or(|s| s.size() < bytes) {
            *staging = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes.max(4).next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let Some(stage) = staging.as_ref() else {
            return Err(BackendError::Device("no staging buffer".into()));
        };
        let mut enc = self.encode(rec)?;
        if bytes > 0 {
            enc.copy_buffer_to_buffer(&src.buf, (offset * 4) as u64, stage, 0, bytes);
        }
        self.queue.submit([enc.finish()]);
        self.check()?;
        out.clear();
        if bytes == 0 {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        stage.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| BackendError::Device(format!("Vulkan device lost: {e}")))?;
        self.check()?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BackendError::Device(format!("read-back failed: {e}"))),
            Err(_) => return Err(BackendError::Device("read-back never completed".into())),
        }
        {
            let view = stage
                .get_mapped_range(0..bytes)
                .map_err(|e| BackendError::Device(format!("read-back failed: {e:?}")))?;
            out.extend_from_slice(bytemuck::cast_slice::<u8, f32>(&view));
        }
        stage.unmap();
        Ok(())
    }

    /// Read a whole buffer's first `len` f32 values (tests, encoder output).
    pub fn read(&self, src: &Buf, offset: usize, len: usize) -> Result<Vec<f32>, BackendError> {
        let mut out = Vec::new();
        self.submit_read(self.recorder(), src, offset, len, &mut out)?;
        Ok(out)
    }

    /// Workgroups over `n` items in groups of `per`, split over x and y so
    /// neither exceeds WebGPU's per-dimension limit; kernels rebuild the
    /// group index as `x + y · GRID_X` and skip the overhang.
    pub fn grid(n: usize, per: usize) -> [u32; 3] {
        let groups = n.div_ceil(per);
        let x = groups.min(GRID_X);
        let y = groups.div_ceil(GRID_X.max(1));
        [x as u32, y.max(1) as u32, 1]
    }
}

/// Workgroups along x before a grid wraps to y (WebGPU's guaranteed 65535).
pub const GRID_X: usize = 32768;

#[cfg(test)]
mod tests {
    use crate::vulkan::ops::testutil::gpu;
    use crate::BackendError;

    #[test]
    fn a_buffer_beyond_the_device_is_out_of_memory_with_the_fix() {
        let Some(g) = gpu() else { return };
        let e = g.alloc(1 << 50, "the test tensor").unwrap_err();
        assert!(matches!(e, BackendError::OutOfMemory(_)), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("the test tensor"), "{msg}");
        assert!(msg.contains("smaller model or --device cpu"), "{msg}");
    }
}
