//! Every version-sensitive wgpu call lives here: instance, adapter and device
//! creation, buffers and their mapping, pipelines, command recording, submit
//! and poll. The ops (`ops/*.rs`) only describe kernels and dispatches, so a
//! wgpu upgrade (the version is pinned in Cargo.toml) touches this file only.

use super::stats::count;
pub use crate::any::{AdapterDesc, DeviceKind};
use crate::BackendError;
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

thread_local! {
    /// Set inside [`Gpu::compile_only`]: recorders made on this thread
    /// build their kernels but submit nothing.
    static DRY: Cell<bool> = const { Cell::new(false) };
}

fn instance() -> wgpu::Instance {
    // The library never changes the environment (other threads may read
    // it); Mesa's noisy device-select layer is the caller's choice, see
    // `any::quiet_device_select_layer`.
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
        matmul: if f.contains(wgpu::Features::SHADER_F16) && coop16(a) {
            "coopmat"
        } else {
            "simt"
        },
    }
}

/// Whether `a` multiplies f16 × f16 → f32 16×16 cooperative matrices in
/// subgroups (what `ops/coop.wgsl` uses), with subgroups enabled.
fn coop16(a: &wgpu::Adapter) -> bool {
    let need = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SUBGROUP;
    a.features().contains(need)
        && a.cooperative_matrix_properties().iter().any(|p| {
            (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
                && p.ab_type == wgpu::CooperativeScalarType::F16
                && p.cr_type == wgpu::CooperativeScalarType::F32
        })
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
    /// `op/variant/entry`, for the GPU profile.
    name: String,
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
    /// End of a submission: what is recorded so far is submitted, so the
    /// GPU starts on it while the host encodes the rest.
    Split,
}

/// Commands of one call, recorded lazily: the params of all dispatches go
/// to one uniform buffer, each dispatch binding its own aligned slice; see
/// [`Plan`] for reusing that buffer and the bind groups across calls.
pub struct Recorder {
    cmds: Vec<Cmd>,
    params: Vec<u8>,
    align: usize,
    /// Made inside [`Gpu::compile_only`]: never submitted.
    dry: bool,
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

    /// Submit what is recorded so far as its own submission (the rest
    /// follows in the next one).
    pub fn split(&mut self) {
        if !matches!(self.cmds.last(), None | Some(Cmd::Split)) {
            self.cmds.push(Cmd::Split);
        }
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
    /// The adapter multiplies f16 × f16 → f32 16×16 cooperative matrices
    /// in subgroups (matrix cores), enabled on this device.
    pub coop16: bool,
    /// The adapter's subgroup size where it has one fixed size (NVIDIA's
    /// 32), else `None` (a range: AMD, Intel; or no subgroups).
    pub subgroup_size: Option<u32>,
    /// Kernels not yet measured on a GPU that the environment chose
    /// (`candidates.rs`); the defaults otherwise.
    pub candidates: super::candidates::Candidates,
    limits: wgpu::Limits,
    pipelines: Mutex<HashMap<(&'static str, String), Arc<Kernel>>>,
    /// One bind group layout per binding list, shared by every kernel with
    /// it, so bind groups are interchangeable between pipeline variants.
    layouts: Mutex<HashMap<Vec<Access>, wgpu::BindGroupLayout>>,
    /// Timestamp queries and their totals, with `VKW_GPU_PROFILE=1`.
    profiler: Option<Mutex<Profiler>>,
    /// wgpu's pipeline cache (driver binaries of the compiled kernels) and
    /// the file it is kept in, where the adapter supports it.
    pcache: Option<(wgpu::PipelineCache, PathBuf)>,
}

/// Most dispatches of one run that get timestamps.
const PROFILE_DISPATCHES: usize = 2048;

/// Timestamp query set, its resolve and read-back buffers, and GPU time per
/// kernel name (ns, dispatches).
#[derive(Default)]
struct Profiler {
    bufs: Option<(wgpu::QuerySet, wgpu::Buffer, wgpu::Buffer)>,
    per_kernel: HashMap<String, (u64, u64)>,
}

/// What a [`Gpu::run`] reads back: `len` f32 values of `src` from element
/// `offset`, through `staging`, into `out`.
pub struct Read<'a> {
    /// The buffer read.
    pub src: &'a Buf,
    /// First element.
    pub offset: usize,
    /// Values.
    pub len: usize,
    /// Where they go (replaced).
    pub out: &'a mut Vec<f32>,
    /// The caller's read-back buffer.
    pub staging: &'a mut Staging,
    /// Values the read-back buffer should hold at least when it is
    /// (re)made, for later, larger reads.
    pub min_len: usize,
}

/// Identity of one dispatch's bind group: its layout (shared by every
/// kernel with the same bindings), buffers and params slice.
#[derive(PartialEq, Eq, Hash)]
struct PlanKey {
    access: Vec<Access>,
    bufs: Vec<wgpu::Buffer>,
    params: (u64, u64),
}

/// Bind groups kept by one plan at most (beyond, it starts afresh).
const PLAN_GROUPS: usize = 4096;

/// The params buffer and bind groups of the command lists that a caller (a
/// decoder state) runs again and again: a bind group is kept for each
/// (layout, buffers, params slice) it was made for, so a decoder step —
/// even with a different number of rows, whose kernels are other pipeline
/// variants of the same layouts — creates no bind group or buffer.
#[derive(Default)]
pub struct Plan {
    groups: HashMap<PlanKey, wgpu::BindGroup>,
    params: Option<wgpu::Buffer>,
}

/// A read-back buffer, owned by whoever reads (each decoder state has its
/// own, so concurrent calls never wait on one another's).
#[derive(Default)]
pub struct Staging(Option<wgpu::Buffer>);

/// The error scopes of one call on this thread (wgpu's scopes are
/// thread-local with its `std` feature): an error raised by this call's
/// commands is reported to this call only. Finish with [`Scope::finish`].
pub struct Scope {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
    internal: wgpu::ErrorScopeGuard,
}

impl Scope {
    /// Pop the scopes (innermost first) and return the first error caught.
    pub fn finish(self) -> Result<(), BackendError> {
        let internal = pollster::block_on(self.internal.pop());
        let validation = pollster::block_on(self.validation.pop());
        let oom = pollster::block_on(self.oom.pop());
        match oom.or(validation).or(internal) {
            Some(e) => Err(device_error(e)),
            None => Ok(()),
        }
    }
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
        Self::open_cached(index, None)
    }

    /// Open adapter `index`, keeping compiled pipelines in a file under
    /// `cache_dir` (wgpu's pipeline cache, where the adapter supports it):
    /// a later run loads the driver's binaries instead of compiling again.
    pub fn open_cached(index: usize, cache_dir: Option<&Path>) -> Result<Self, BackendError> {
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
        let coop16 = f16 && coop16(adapter);
        if coop16 {
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SUBGROUP;
        }
        // GPU timestamps around each dispatch with VKW_GPU_PROFILE=1 (read,
        // never set, here), where the adapter has them.
        let profile = std::env::var("VKW_GPU_PROFILE").is_ok_and(|v| v == "1")
            && adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        if profile {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let cache_file = cache_dir
            .filter(|_| adapter.features().contains(wgpu::Features::PIPELINE_CACHE))
            .and_then(|d| wgpu::util::pipeline_cache_key(&adapter.get_info()).map(|k| d.join(k)));
        if cache_file.is_some() {
            features |= wgpu::Features::PIPELINE_CACHE;
        }
        // Ask for everything the adapter offers: a model's embedding matrix
        // (51k × d) exceeds WebGPU's default 128 MiB binding limit on large
        // models, and some adapters are below WebGPU's other defaults.
        let limits = adapter.limits();
        let mut dd = wgpu::DeviceDescriptor {
            label: Some("vkwhisper"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        if coop16 {
            // SAFETY: wgpu's experimental cooperative matrices are used by
            // one kernel (`ops/coop.wgsl`), built only where the adapter
            // reports the configuration it uses, and tested against the CPU
            // reference on such adapters (scripts/device-check.sh).
            dd.experimental_features = unsafe { wgpu::ExperimentalFeatures::enabled() };
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&dd)).map_err(|e| {
            BackendError::Device(format!("cannot open Vulkan device {}: {e}", desc.name))
        })?;
        // Every call of the backend runs inside its own error scopes
        // (`Gpu::scope`), which catch its errors; the default handler for
        // anything else panics, so this one drops them instead (nothing
        // this library does runs outside a scope).
        device.on_uncaptured_error(Arc::new(|_e: wgpu::Error| {}));
        let pcache = cache_file.map(|file| {
            let data = std::fs::read(&file).ok();
            // SAFETY: the data is what `PipelineCache::get_data` wrote for
            // an adapter with the same pipeline-cache key (the file name);
            // wgpu and the driver check its header and version and, with
            // `fallback`, start an empty cache when it does not match.
            let cache = unsafe {
                device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("vkwhisper"),
                    data: data.as_deref(),
                    fallback: true,
                })
            };
            (cache, file)
        });
        let info = adapter.get_info();
        let subgroup_size = (desc.subgroups && info.subgroup_min_size == info.subgroup_max_size)
            .then_some(info.subgroup_max_size);
        let mut gpu = Self {
            device,
            queue,
            desc,
            f16,
            coop16,
            subgroup_size,
            candidates: Default::default(),
            limits,
            pipelines: Mutex::new(HashMap::new()),
            layouts: Mutex::new(HashMap::new()),
            profiler: profile.then(|| Mutex::new(Profiler::default())),
            pcache,
        };
        gpu.candidates = super::candidates::Candidates::from_env(&gpu)?;
        Ok(gpu)
    }

    /// Whether compiled pipelines are kept in a file across runs.
    pub fn pipeline_cache_file(&self) -> Option<&Path> {
        self.pcache.as_ref().map(|(_, f)| f.as_path())
    }

    /// Write the pipeline cache to its file (through a temporary, renamed
    /// into place, so a concurrent reader never sees half a file).
    pub fn save_pipeline_cache(&self) -> std::io::Result<()> {
        let Some((cache, file)) = &self.pcache else {
            return Ok(());
        };
        let Some(data) = cache.get_data() else {
            return Ok(());
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &data)?;
        std::fs::rename(&tmp, file)
    }

    /// Run `f` building every kernel it records without running any: its
    /// recorders submit nothing and read back zeros. For compiling the
    /// pipelines at model load.
    pub fn compile_only<T>(&self, f: impl FnOnce() -> T) -> T {
        let was = DRY.with(|d| d.replace(true));
        let r = f();
        DRY.with(|d| d.set(was));
        r
    }

    /// GPU time per kernel so far (`VKW_GPU_PROFILE=1`), largest first:
    /// (kernel, total ms, dispatches).
    pub fn profile(&self) -> Vec<(String, f64, u64)> {
        let Some(p) = &self.profiler else {
            return Vec::new();
        };
        let mut v: Vec<(String, f64, u64)> = p
            .lock()
            .map(|p| {
                p.per_kernel
                    .iter()
                    .map(|(k, &(ns, n))| (k.clone(), ns as f64 / 1e6, n))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    /// Open error scopes for one call on this thread.
    pub fn scope(&self) -> Scope {
        Scope {
            oom: self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            validation: self.device.push_error_scope(wgpu::ErrorFilter::Validation),
            internal: self.device.push_error_scope(wgpu::ErrorFilter::Internal),
        }
    }

    /// Run `f` inside this call's error scopes: its own error first, else
    /// any device error its commands raised.
    pub fn scoped<T>(
        &self,
        f: impl FnOnce() -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let scope = self.scope();
        let r = f();
        let caught = scope.finish();
        let v = r?;
        caught?;
        Ok(v)
    }

    /// A new recorder.
    pub fn recorder(&self) -> Recorder {
        Recorder {
            cmds: Vec::new(),
            params: Vec::new(),
            align: self.limits.min_uniform_buffer_offset_alignment.max(16) as usize,
            dry: DRY.with(|d| d.get()),
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
            .layouts
            .lock()
            .map_err(|_| BackendError::Device("layout cache poisoned".into()))?
            .entry(access.to_vec())
            .or_insert_with(|| {
                self.device
                    .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                        label: Some(op),
                        entries: &entries,
                    })
            })
            .clone();
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
                cache: self.pcache.as_ref().map(|(c, _)| c),
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
            name: format!("{op}/{variant}/{entry}"),
        });
        cache.insert(key, k.clone());
        Ok(k)
    }

    /// A zero-initialised storage buffer of `bytes` bytes.
    pub fn alloc(&self, bytes: u64, label: &str) -> Result<Buf, BackendError> {
        // Multiples of 16 bytes: weights are read as arrays of 4-vectors.
        let bytes = bytes.max(16).next_multiple_of(16);
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
        count(|t| t.buffers += 1);
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

    /// Run `rec`: its params written into `plan`'s buffer, its bind groups
    /// taken from `plan` when the same kernels bind the same buffers as in
    /// the plan's last run (else built and kept), submitted in the chunks
    /// that [`Recorder::split`] marks, and, with `read`, `len` f32 values of
    /// `src` from element `offset` copied back into `out` (one host wait).
    pub fn run(
        &self,
        rec: Recorder,
        plan: &mut Plan,
        mut read: Option<Read<'_>>,
    ) -> Result<(), BackendError> {
        if rec.dry {
            // Counted as if run, so a dry recording reports its shape.
            let n = rec
                .cmds
                .iter()
                .filter(|c| matches!(c, Cmd::Dispatch { .. }))
                .count();
            let splits = rec.cmds.iter().filter(|c| matches!(c, Cmd::Split)).count();
            count(|t| {
                t.dispatches += n as u64;
                t.submits += splits as u64 + 1;
            });
            if let Some(r) = read {
                r.out.clear();
                r.out.resize(r.len, 0.0);
            }
            return Ok(());
        }
        let t0 = Instant::now();
        let need = rec.params.len().max(16) as u64;
        if plan.params.as_ref().is_none_or(|p| p.size() < need) {
            plan.params = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params"),
                size: need.next_power_of_two(),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
            count(|t| t.buffers += 1);
            plan.groups.clear();
        }
        if plan.groups.len() > PLAN_GROUPS {
            plan.groups.clear();
        }
        let Some(params) = plan.params.clone() else {
            return Err(BackendError::Device("no params buffer".into()));
        };
        if !rec.params.is_empty() {
            self.queue.write_buffer(&params, 0, &rec.params);
        }
        let mut bgs = Vec::with_capacity(rec.cmds.len());
        for c in &rec.cmds {
            if let Cmd::Dispatch {
                kernel,
                bufs,
                params: off,
                params_size,
                ..
            } = c
            {
                let key = PlanKey {
                    access: kernel.access.clone(),
                    bufs: bufs.clone(),
                    params: (*off, *params_size),
                };
                let g = match plan.groups.get(&key) {
                    Some(g) => g.clone(),
                    None => {
                        let g = self.bind_group(kernel, bufs, &params, *off, *params_size);
                        count(|t| t.bind_groups += 1);
                        plan.groups.insert(key, g.clone());
                        g
                    }
                };
                bgs.push(g);
            }
        }
        if let Some(r) = &mut read {
            let bytes = (r.len * 4) as u64;
            let size = (r.len.max(r.min_len) * 4) as u64;
            if r.staging.0.as_ref().is_none_or(|s| s.size() < bytes) {
                r.staging.0 = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: size.max(4).next_power_of_two(),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }));
                count(|t| t.buffers += 1);
            }
        }
        let mut prof = match &self.profiler {
            Some(p) => Some(
                p.lock()
                    .map_err(|_| BackendError::Device("profiler poisoned".into()))?,
            ),
            None => None,
        };
        let queries = prof.as_mut().map(|p| self.profile_bufs(p));
        let mut timed: Vec<String> = Vec::new();
        let mut enc = self.encoder();
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        let mut gi = 0;
        for cmd in &rec.cmds {
            match cmd {
                Cmd::Dispatch { kernel, groups, .. } => {
                    // Profiling: each dispatch in its own timed pass.
                    let tw = match &queries {
                        Some(q) if timed.len() < PROFILE_DISPATCHES => {
                            drop(pass.take());
                            let i = 2 * timed.len() as u32;
                            timed.push(kernel.name.clone());
                            Some(wgpu::ComputePassTimestampWrites {
                                query_set: q,
                                beginning_of_pass_write_index: Some(i),
                                end_of_pass_write_index: Some(i + 1),
                            })
                        }
                        _ => None,
                    };
                    let p = pass.get_or_insert_with(|| {
                        enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: None,
                            timestamp_writes: tw,
                        })
                        .forget_lifetime()
                    });
                    p.set_pipeline(&kernel.pipeline);
                    p.set_bind_group(0, &bgs[gi], &[]);
                    p.dispatch_workgroups(groups[0], groups[1], groups[2]);
                    count(|t| t.dispatches += 1);
                    gi += 1;
                }
                Cmd::Copy {
                    src,
                    src_off,
                    dst,
                    dst_off,
                    size,
                } => {
                    drop(pass.take());
                    enc.copy_buffer_to_buffer(src, *src_off, dst, *dst_off, *size);
                }
                Cmd::Split => {
                    drop(pass.take());
                    let done = std::mem::replace(&mut enc, self.encoder());
                    self.queue.submit([done.finish()]);
                    count(|t| t.submits += 1);
                }
            }
        }
        drop(pass);
        if let (Some(q), Some((_, resolve, readq))) =
            (&queries, prof.as_ref().and_then(|p| p.bufs.as_ref()))
        {
            if !timed.is_empty() {
                let n = 2 * timed.len() as u32;
                enc.resolve_query_set(q, 0..n, resolve, 0);
                enc.copy_buffer_to_buffer(resolve, 0, readq, 0, u64::from(n) * 8);
            }
        }
        let mut mapped = None;
        if let Some(r) = read {
            let bytes = (r.len * 4) as u64;
            if let Some(stage) = r.staging.0.as_ref().filter(|_| bytes > 0) {
                enc.copy_buffer_to_buffer(&r.src.buf, (r.offset * 4) as u64, stage, 0, bytes);
                mapped = Some((stage.clone(), bytes, r.out));
            } else {
                r.out.clear();
            }
        }
        let cb = enc.finish();
        count(|t| t.record_ns += t0.elapsed().as_nanos() as u64);
        self.queue.submit([cb]);
        count(|t| t.submits += 1);
        if let Some((stage, bytes, out)) = mapped {
            out.clear();
            self.map_read(&stage, bytes, out)?;
        }
        if let Some(p) = prof.as_mut().filter(|_| !timed.is_empty()) {
            self.profile_collect(p, &timed)?;
        }
        Ok(())
    }

    /// The profiler's query set and buffers (created once).
    fn profile_bufs(&self, p: &mut Profiler) -> wgpu::QuerySet {
        let (q, _, _) = p.bufs.get_or_insert_with(|| {
            let n = 2 * PROFILE_DISPATCHES as u64;
            let q = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: n as u32,
            });
            let buf = |usage| {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("profile"),
                    size: n * 8,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let resolve = buf(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
            let read = buf(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
            (q, resolve, read)
        });
        q.clone()
    }

    /// Read the run's timestamps (a second wait, profiling only) and add
    /// each dispatch's GPU time to its kernel's total and the tally.
    fn profile_collect(&self, p: &mut Profiler, timed: &[String]) -> Result<(), BackendError> {
        let Some((_, _, readq)) = &p.bufs else {
            return Ok(());
        };
        let bytes = timed.len() as u64 * 16;
        let (tx, rx) = mpsc::channel();
        readq.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.wait_idle()?;
        if !matches!(rx.recv(), Ok(Ok(()))) {
            return Err(BackendError::Device("profile read-back failed".into()));
        }
        let period = f64::from(self.queue.get_timestamp_period());
        let mut total = 0u64;
        {
            let view = readq
                .get_mapped_range(0..bytes)
                .map_err(|e| BackendError::Device(format!("profile read-back failed: {e:?}")))?;
            let ts: &[u64] = bytemuck::cast_slice(&view);
            for (name, pair) in timed.iter().zip(ts.chunks(2)) {
                let ns = (pair[1].saturating_sub(pair[0]) as f64 * period) as u64;
                total += ns;
                let e = p.per_kernel.entry(name.clone()).or_default();
                e.0 += ns;
                e.1 += 1;
            }
        }
        readq.unmap();
        count(|t| t.gpu_ns += total);
        Ok(())
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    fn bind_group(
        &self,
        kernel: &Kernel,
        bufs: &[wgpu::Buffer],
        params: &wgpu::Buffer,
        off: u64,
        size: u64,
    ) -> wgpu::BindGroup {
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
                buffer: params,
                offset: off,
                size: wgpu::BufferSize::new(size),
            }),
        });
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &kernel.layout,
            entries: &entries,
        })
    }

    /// Submit the recorded commands (no read-back) with a one-off plan.
    pub fn submit(&self, rec: Recorder) -> Result<(), BackendError> {
        self.run(rec, &mut Plan::default(), None)
    }

    /// Submit the recorded commands with a one-off plan, then read `len`
    /// f32 values of `src` from element `offset` back into `out`.
    pub fn submit_read(
        &self,
        rec: Recorder,
        src: &Buf,
        offset: usize,
        len: usize,
        out: &mut Vec<f32>,
        staging: &mut Staging,
    ) -> Result<(), BackendError> {
        let read = Read {
            src,
            offset,
            len,
            out,
            staging,
            min_len: 0,
        };
        self.run(rec, &mut Plan::default(), Some(read))
    }

    /// Block until every submitted command has finished (the read-backs
    /// wait here; benchmarks too: the encoder is submitted without a wait,
    /// so timing it needs one).
    pub fn wait_idle(&self) -> Result<(), BackendError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| BackendError::Device(format!("Vulkan device lost: {e}")))
    }

    /// Bytes of workgroup memory a kernel may use on this device.
    pub fn max_workgroup_bytes(&self) -> u64 {
        u64::from(self.limits.max_compute_workgroup_storage_size)
    }

    /// Invocations a workgroup may have on this device.
    pub fn max_workgroup_invocations(&self) -> u32 {
        self.limits.max_compute_invocations_per_workgroup
    }

    /// Map the first `bytes` of `stage` (after the submitted copy into it)
    /// and append them to `out` as f32: the call's one host wait.
    fn map_read(
        &self,
        stage: &wgpu::Buffer,
        bytes: u64,
        out: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel();
        stage.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.wait_idle()?;
        count(|t| {
            t.waits += 1;
            t.wait_ns += t0.elapsed().as_nanos() as u64;
            t.read_bytes += bytes;
        });
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
        let mut staging = Staging::default();
        self.submit_read(self.recorder(), src, offset, len, &mut out, &mut staging)?;
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
        assert!(msg.contains("smaller model or the CPU backend"), "{msg}");
        assert!(!msg.contains("--"), "{msg}");
    }
}
