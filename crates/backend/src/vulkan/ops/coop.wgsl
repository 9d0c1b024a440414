// Many-row matmul on matrix cores (KHR cooperative matrices through
// wgpu's experimental support): out[m, n] = epi(alpha · x[m, k] · W[n, k]ᵀ)
// with f16 × f16 → f32 16×16 multiply-adds. A workgroup of 128 invocations
// owns a 64×64 output tile, 16 tiles of 16×16 spread over its subgroups
// (each subgroup keeps up to 8 accumulators, as many as 16 / subgroups);
// 32-deep slices of x and W are staged in workgroup memory as f16 (x read
// as 4-vectors of XTYPE, W through `wl4`: f16, or int8 exactly in f16 with
// the row scale applied in the epilogue), the accumulators are stored to
// workgroup memory at the end and the epilogue (scale, bias, GELU,
// residual) runs per element. Uniform, bindings and epilogue:
// `matmul_common.wgsl` (`part` unused).
// Only built where the adapter reports f16×f16→f32 16×16 subgroup
// configurations (`coop.rs`); software Vulkan has none.
enable wgpu_cooperative_matrix;
// Each 16×16 tile belongs to one subgroup, chosen by subgroup_id: the
// cooperative operations then run in subgroup-uniform control flow, which
// is what SPIR-V's cooperative matrices (Subgroup scope) require; naga's
// analysis only knows workgroup uniformity, so its check is turned off.
diagnostic(off, derivative_uniformity);
MATMUL_COMMON

var<workgroup> as_: array<f16, 2048>; // [row][k of the slice], 64 × 32
var<workgroup> bs_: array<f16, 2048>; // [col][k of the slice], 64 × 32
var<workgroup> cs: array<f32, 4096>;  // [row][col], 64 × 64

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32,
        @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) nsg: u32) {
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    for (var i = t; i < 4096u; i = i + 128u) { cs[i] = 0.0; }
    workgroupBarrier();
    var acc0 = coopLoadT<coop_mat16x16<f32, C>>(&cs[0], 64u);
    var acc1 = coopLoadT<coop_mat16x16<f32, C>>(&cs[0], 64u);
    var acc2 = coopLoadT<coop_mat16x16<f32, C>>(&cs[0], 64u);
    var acc3 = coopLoadT<coop_mat16x16<f32, C>>(&cs[0], 64u);
    var acc4 = coopLoadT<coop_mat16x16<f32, C>>(&cs[0], 64u);
    var acc5 = coopLoadT<coop_mat16x16<f32, C>>(&cs[0], 64u);
    var acc6 = coopLoadT<coop_mat16x16<f32, C>>(&cs[0], 64u);
    var acc7 = coopLoadT<coop_mat16x16<f32, C>>(&cs[0], 64u);
    workgroupBarrier();
    for (var k0 = 0u; k0 < p.k; k0 = k0 + 32u) {
        // 64 rows × 8 k-quads of x and of W: 512 4-vectors each.
        for (var e = t; e < 512u; e = e + 128u) {
            let r = e >> 3u;
            let kq = (e & 7u) * 4u;
            let gk = k0 + kq;
            var xv = vec4<f32>(0.0);
            var wv = vec4<f32>(0.0);
            if (row0 + r < p.m && gk < p.k) { xv = vec4<f32>(x[(p.x_off + (row0 + r) * p.ldx + gk) >> 2u]); }
            if (col0 + r < p.n && gk < p.k) { wv = wl4((p.w_off + (col0 + r) * p.ldw + gk) >> 2u); }
            let o = r * 32u + kq;
            as_[o] = f16(xv.x);
            as_[o + 1u] = f16(xv.y);
            as_[o + 2u] = f16(xv.z);
            as_[o + 3u] = f16(xv.w);
            bs_[o] = f16(wv.x);
            bs_[o + 1u] = f16(wv.y);
            bs_[o + 2u] = f16(wv.z);
            bs_[o + 3u] = f16(wv.w);
        }
        workgroupBarrier();
        if (sg + 0u * nsg < 16u) {
            let ti = sg + 0u * nsg;
            let ab = (ti / 4u) * 16u * 32u;
            let bb = (ti % 4u) * 16u * 32u;
            acc0 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb], 32u), acc0);
            acc0 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab + 16u], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb + 16u], 32u), acc0);
        }
        if (sg + 1u * nsg < 16u) {
            let ti = sg + 1u * nsg;
            let ab = (ti / 4u) * 16u * 32u;
            let bb = (ti % 4u) * 16u * 32u;
            acc1 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb], 32u), acc1);
            acc1 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab + 16u], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb + 16u], 32u), acc1);
        }
        if (sg + 2u * nsg < 16u) {
            let ti = sg + 2u * nsg;
            let ab = (ti / 4u) * 16u * 32u;
            let bb = (ti % 4u) * 16u * 32u;
            acc2 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb], 32u), acc2);
            acc2 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab + 16u], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb + 16u], 32u), acc2);
        }
        if (sg + 3u * nsg < 16u) {
            let ti = sg + 3u * nsg;
            let ab = (ti / 4u) * 16u * 32u;
            let bb = (ti % 4u) * 16u * 32u;
            acc3 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb], 32u), acc3);
            acc3 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab + 16u], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb + 16u], 32u), acc3);
        }
        if (sg + 4u * nsg < 16u) {
            let ti = sg + 4u * nsg;
            let ab = (ti / 4u) * 16u * 32u;
            let bb = (ti % 4u) * 16u * 32u;
            acc4 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb], 32u), acc4);
            acc4 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab + 16u], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb + 16u], 32u), acc4);
        }
        if (sg + 5u * nsg < 16u) {
            let ti = sg + 5u * nsg;
            let ab = (ti / 4u) * 16u * 32u;
            let bb = (ti % 4u) * 16u * 32u;
            acc5 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb], 32u), acc5);
            acc5 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab + 16u], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb + 16u], 32u), acc5);
        }
        if (sg + 6u * nsg < 16u) {
            let ti = sg + 6u * nsg;
            let ab = (ti / 4u) * 16u * 32u;
            let bb = (ti % 4u) * 16u * 32u;
            acc6 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb], 32u), acc6);
            acc6 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab + 16u], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb + 16u], 32u), acc6);
        }
        if (sg + 7u * nsg < 16u) {
            let ti = sg + 7u * nsg;
            let ab = (ti / 4u) * 16u * 32u;
            let bb = (ti % 4u) * 16u * 32u;
            acc7 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb], 32u), acc7);
            acc7 = coopMultiplyAdd(coopLoadT<coop_mat16x16<f16, A>>(&as_[ab + 16u], 32u), coopLoad<coop_mat16x16<f16, B>>(&bs_[bb + 16u], 32u), acc7);
        }
        workgroupBarrier();
    }
    if (sg + 0u * nsg < 16u) {
        let ti = sg + 0u * nsg;
        coopStoreT(acc0, &cs[(ti / 4u) * 16u * 64u + (ti % 4u) * 16u], 64u);
    }
    if (sg + 1u * nsg < 16u) {
        let ti = sg + 1u * nsg;
        coopStoreT(acc1, &cs[(ti / 4u) * 16u * 64u + (ti % 4u) * 16u], 64u);
    }
    if (sg + 2u * nsg < 16u) {
        let ti = sg + 2u * nsg;
        coopStoreT(acc2, &cs[(ti / 4u) * 16u * 64u + (ti % 4u) * 16u], 64u);
    }
    if (sg + 3u * nsg < 16u) {
        let ti = sg + 3u * nsg;
        coopStoreT(acc3, &cs[(ti / 4u) * 16u * 64u + (ti % 4u) * 16u], 64u);
    }
    if (sg + 4u * nsg < 16u) {
        let ti = sg + 4u * nsg;
        coopStoreT(acc4, &cs[(ti / 4u) * 16u * 64u + (ti % 4u) * 16u], 64u);
    }
    if (sg + 5u * nsg < 16u) {
        let ti = sg + 5u * nsg;
        coopStoreT(acc5, &cs[(ti / 4u) * 16u * 64u + (ti % 4u) * 16u], 64u);
    }
    if (sg + 6u * nsg < 16u) {
        let ti = sg + 6u * nsg;
        coopStoreT(acc6, &cs[(ti / 4u) * 16u * 64u + (ti % 4u) * 16u], 64u);
    }
    if (sg + 7u * nsg < 16u) {
        let ti = sg + 7u * nsg;
        coopStoreT(acc7, &cs[(ti / 4u) * 16u * 64u + (ti % 4u) * 16u], 64u);
    }
    workgroupBarrier();
    for (var e = t; e < 4096u; e = e + 128u) {
        let r = row0 + e / 64u;
        let c = col0 + e % 64u;
        if (r < p.m && c < p.n) { epilogue(r, c, cs[e]); }
    }
}
