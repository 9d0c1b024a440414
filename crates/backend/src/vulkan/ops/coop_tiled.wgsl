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
// The `//@` lines are replaced by the generator. Uniform, bindings, epilogue and loads:
// `matmul_common.wgsl`.
enable wgpu_cooperative_matrix;
// Each subgroup's block is chosen by subgroup_id, so the cooperative
// operations run in subgroup-uniform control flow (what SPIR-V's
// Subgroup-scope cooperative matrices require); naga's analysis only
// knows workgroup uniformity, so its check is turned off, as in coop.wgsl.
diagnostic(off, derivative_uniformity);
MATMUL_COMMON
//@CONSTS

var<workgroup> as_: array<f16, NBUF * BM * SA>; // [buffer][row][k of the slice]
var<workgroup> bs_: array<f16, NBUF * BN * SA>; // [buffer][col][k of the slice]
var<workgroup> cs: array<f32, NSG * 256u>;      // a 16×16 staging slot per subgroup

// 4-vector `e` of the tile's x slice at depth k0 (zero outside the matrix).
fn ldx(row0: u32, e: u32, k0: u32) -> vec4<f32> {
    return load_x(row0 + e / (BK / 4u), k0 + (e % (BK / 4u)) * 4u);
}

// 4-vector `e` of the tile's W slice at depth k0 (zero outside the matrix).
fn ldw(col0: u32, e: u32, k0: u32) -> vec4<f32> {
    return load_w(col0 + e / (BK / 4u), k0 + (e % (BK / 4u)) * 4u);
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
