// Many-row matmul on matrix cores with generated tiles (`coop_tiled.rs`):
// out[m, n] = epi(alpha · x[m, k] · W[n, k]ᵀ), f16 × f16 → f32 16×16
// multiply-adds, a candidate to replace `coop.wgsl` once measured on a GPU.
// Differences from `coop.wgsl`: the workgroup tile (BM × BN) and each
// subgroup's block of fragments (WMF × WNF) are chosen when the source is
// generated; a subgroup reuses each A fragment across its WNF columns and
// each B fragment across its WMF rows (coop.wgsl reloads both per
// multiply); with double buffering (NBUF = 2) the next slice's global
// loads are issued before the current slice's multiplies and one barrier
// per slice remains; shared rows may be padded (SA = BK + pad) against
// bank conflicts; the epilogue goes through a 16×16 staging slot per
// subgroup instead of a whole-tile f32 array, so 128×128 tiles fit.
// The `//@` lines are replaced by the generator. Bindings as `gemm.wgsl`.
enable wgpu_cooperative_matrix;
// Each subgroup's block is chosen by subgroup_id, so the cooperative
// operations run in subgroup-uniform control flow (what SPIR-V's
// Subgroup-scope cooperative matrices require); naga's analysis only
// knows workgroup uniformity, so its check is turned off, as in coop.wgsl.
diagnostic(off, derivative_uniformity);
struct P {
    m: u32, n: u32, k: u32, ldx: u32,
    ldw: u32, ldo: u32, x_off: u32, w_off: u32,
    o_off: u32, b_off: u32, flags: u32, alpha: f32,
    ksplit: u32, splits: u32, p0: u32, p1: u32,
}
const FLAG_BIAS: u32 = 1u;
const FLAG_GELU: u32 = 2u;
const FLAG_ACC: u32 = 4u;
const FLAG_SCALE: u32 = 16u;
//@CONSTS

@group(0) @binding(0) var<storage, read> x: array<vec4<XTYPE>>;
WEIGHTS(1)
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<OTYPE>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;
@group(0) @binding(6) var<uniform> p: P;

var<workgroup> as_: array<f16, NBUF * BM * SA>; // [buffer][row][k of the slice]
var<workgroup> bs_: array<f16, NBUF * BN * SA>; // [buffer][col][k of the slice]
var<workgroup> cs: array<f32, NSG * 256u>;      // a 16×16 staging slot per subgroup

fn epilogue(r: u32, c: u32, acc: f32) {
    var v = acc * p.alpha;
    if ((p.flags & FLAG_SCALE) != 0u) { v = v / scale[c]; }
    if ((p.flags & FLAG_BIAS) != 0u) { v = v + bias[p.b_off + c]; }
    if ((p.flags & FLAG_GELU) != 0u) { v = gelu_erf(v); }
    let i = p.o_off + r * p.ldo + c;
    if ((p.flags & FLAG_ACC) != 0u) { out[i] = OTYPE(f32(out[i]) + v); } else { out[i] = OTYPE(v); }
}

// 4-vector `e` of the tile's x slice at depth k0 (zero outside the matrix).
fn ldx(row0: u32, e: u32, k0: u32) -> vec4<f32> {
    let r = e / (BK / 4u);
    let gk = k0 + (e % (BK / 4u)) * 4u;
    if (row0 + r < p.m && gk < p.k) { return vec4<f32>(x[(p.x_off + (row0 + r) * p.ldx + gk) >> 2u]); }
    return vec4<f32>(0.0);
}

// 4-vector `e` of the tile's W slice at depth k0 (zero outside the matrix).
fn ldw(col0: u32, e: u32, k0: u32) -> vec4<f32> {
    let c = e / (BK / 4u);
    let gk = k0 + (e % (BK / 4u)) * 4u;
    if (col0 + c < p.n && gk < p.k) { return wl4((p.w_off + (col0 + c) * p.ldw + gk) >> 2u); }
    return vec4<f32>(0.0);
}

fn sta(buf: u32, e: u32, v: vec4<f32>) {
    let o = buf * BM * SA + (e / (BK / 4u)) * SA + (e % (BK / 4u)) * 4u;
    as_[o] = f16(v.x);
    as_[o + 1u] = f16(v.y);
    as_[o + 2u] = f16(v.z);
    as_[o + 3u] = f16(v.w);
}

fn stb(buf: u32, e: u32, v: vec4<f32>) {
    let o = buf * BN * SA + (e / (BK / 4u)) * SA + (e % (BK / 4u)) * 4u;
    bs_[o] = f16(v.x);
    bs_[o + 1u] = f16(v.y);
    bs_[o + 2u] = f16(v.z);
    bs_[o + 3u] = f16(v.w);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) sgsize: u32) {
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    // This subgroup's block: rows ar .. ar + 16·WMF, columns bc .. bc + 16·WNF.
    let ar = (sg / SGN) * (16u * WMF);
    let bc = (sg % SGN) * (16u * WNF);
    for (var i = t; i < NSG * 256u; i = i + WG) { cs[i] = 0.0; }
    workgroupBarrier();
//@ACC
//@REGS
//@PROLOGUE
    for (var k0 = 0u; k0 < p.k; k0 = k0 + BK) {
//@BODY
    }
//@STORE
}
