// Flash attention of the encoder on matrix cores (a candidate to replace
// `attn.wgsl` in the float16 modes; `attn.rs` says when it runs):
// softmax(Q Kᵀ / √dh) V for one window, head width 64, f16 activations.
// One workgroup of four 32-lane subgroups per (64 query rows, head); each
// subgroup owns 16 query rows. Per tile of 64 keys: S = Q Kᵀ as 16×16
// cooperative-matrix products (f16 × f16 → f32), stored to workgroup
// memory; the online softmax there, two lanes per row (32 keys each, the
// pair combined with a subgroup shuffle), the probabilities written as f16;
// P·V on matrix cores again, and each lane adds its row's 32 output
// columns into registers after rescaling them by the row's correction.
// Keys past the window are masked; rows past it are computed and dropped.
enable wgpu_cooperative_matrix;
// Cooperative operations run in subgroup-uniform control flow (every
// subgroup takes the same path; only the addresses depend on the
// subgroup); naga's check only knows workgroup uniformity (as coop.wgsl).
diagnostic(off, derivative_uniformity);
struct P {
    frames: u32, ld: u32, base: u32, q_off: u32,
    k_off: u32, v_off: u32, o_ld: u32, o_off: u32,
    scale: f32, p0: u32, p1: u32, p2: u32,
}
const DH: u32 = 64u;
const KT: u32 = 64u;
const BQ: u32 = 64u;
// f16 rows padded by 8 halves (16 bytes) against bank conflicts.
const SA: u32 = 72u;
const NEG: f32 = -3.4028235e38;

@group(0) @binding(0) var<storage, read> qkv: array<vec4<f16>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<OTYPE>>;
@group(0) @binding(2) var<uniform> p: P;

var<workgroup> ks: array<f16, KT * SA>; // keys [key][channel]; Q [row][channel] first
var<workgroup> vs: array<f16, KT * SA>; // values [key][channel]
var<workgroup> ps: array<f16, BQ * SA>; // probabilities [row][key]
var<workgroup> ss: array<f32, BQ * 64u>; // scores [row][key], then P·V [row][channel]
var<workgroup> zero: array<f32, 256>;

// 4-vector i of rows r0 .. r0 + 64 of the head's 64 columns from `col`
// (zero past the window), and where it goes in a [row][SA] tile.
fn tile4(i: u32, r0: u32, col: u32) -> vec4<f16> {
    let r = i / 16u;
    if (r0 + r < p.frames) { return qkv[(p.base + (r0 + r) * p.ld + col) / 4u + i % 16u]; }
    return vec4<f16>(0.0);
}

fn at(i: u32) -> u32 { return (i / 16u) * SA + (i % 16u) * 4u; }

// (naga takes no workgroup pointers as arguments: one function per tile.)
fn stage_k(t: u32, r0: u32, col: u32) {
    for (var i = t; i < 64u * 16u; i = i + 128u) {
        let v = tile4(i, r0, col);
        let o = at(i);
        ks[o] = v.x;
        ks[o + 1u] = v.y;
        ks[o + 2u] = v.z;
        ks[o + 3u] = v.w;
    }
}

fn stage_v(t: u32, r0: u32, col: u32) {
    for (var i = t; i < 64u * 16u; i = i + 128u) {
        let v = tile4(i, r0, col);
        let o = at(i);
        vs[o] = v.x;
        vs[o + 1u] = v.y;
        vs[o + 2u] = v.z;
        vs[o + 3u] = v.w;
    }
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let h = wg.y;
    let q0 = wg.x * BQ;
    let hc = h * DH;
    for (var i = t; i < 256u; i = i + 128u) { zero[i] = 0.0; }
    stage_k(t, q0, p.q_off + hc);
    workgroupBarrier();
    // This subgroup's 16 query rows, as four 16-deep slices (kept in registers).
    let qrow = sg * 16u * SA;
    let qa0 = coopLoadT<coop_mat16x16<f16, A>>(&ks[qrow], SA);
    let qa1 = coopLoadT<coop_mat16x16<f16, A>>(&ks[qrow + 16u], SA);
    let qa2 = coopLoadT<coop_mat16x16<f16, A>>(&ks[qrow + 32u], SA);
    let qa3 = coopLoadT<coop_mat16x16<f16, A>>(&ks[qrow + 48u], SA);
    workgroupBarrier();
    // Two lanes per row: `half` picks the lane's 32 keys of a tile and its
    // 32 output columns.
    let row = sg * 16u + lane / 2u;
    let half = (lane & 1u) * 32u;
    let sb = row * 64u + half;
    let pb = row * SA + half;
    let srow = sg * 16u * 64u;
    let prow = sg * 16u * SA;
    var m = NEG;
    var l = 0.0;
    var o: array<f32, 32>;
    for (var j0 = 0u; j0 < p.frames; j0 = j0 + KT) {
        stage_k(t, j0, p.k_off + hc);
        stage_v(t, j0, p.v_off + hc);
        workgroupBarrier();
        // S = Q Kᵀ for 16 rows × 64 keys: K [key][channel] is Kᵀ column-major.
        var s0 = coopLoadT<coop_mat16x16<f32, C>>(&zero[0], 16u);
        var s1 = coopLoadT<coop_mat16x16<f32, C>>(&zero[0], 16u);
        var s2 = coopLoadT<coop_mat16x16<f32, C>>(&zero[0], 16u);
        var s3 = coopLoadT<coop_mat16x16<f32, C>>(&zero[0], 16u);
        s0 = coopMultiplyAdd(qa0, coopLoad<coop_mat16x16<f16, B>>(&ks[0u], SA), s0);
        s1 = coopMultiplyAdd(qa0, coopLoad<coop_mat16x16<f16, B>>(&ks[16u * SA], SA), s1);
        s2 = coopMultiplyAdd(qa0, coopLoad<coop_mat16x16<f16, B>>(&ks[32u * SA], SA), s2);
        s3 = coopMultiplyAdd(qa0, coopLoad<coop_mat16x16<f16, B>>(&ks[48u * SA], SA), s3);
        s0 = coopMultiplyAdd(qa1, coopLoad<coop_mat16x16<f16, B>>(&ks[16u], SA), s0);
        s1 = coopMultiplyAdd(qa1, coopLoad<coop_mat16x16<f16, B>>(&ks[16u * SA + 16u], SA), s1);
        s2 = coopMultiplyAdd(qa1, coopLoad<coop_mat16x16<f16, B>>(&ks[32u * SA + 16u], SA), s2);
        s3 = coopMultiplyAdd(qa1, coopLoad<coop_mat16x16<f16, B>>(&ks[48u * SA + 16u], SA), s3);
        s0 = coopMultiplyAdd(qa2, coopLoad<coop_mat16x16<f16, B>>(&ks[32u], SA), s0);
        s1 = coopMultiplyAdd(qa2, coopLoad<coop_mat16x16<f16, B>>(&ks[16u * SA + 32u], SA), s1);
        s2 = coopMultiplyAdd(qa2, coopLoad<coop_mat16x16<f16, B>>(&ks[32u * SA + 32u], SA), s2);
        s3 = coopMultiplyAdd(qa2, coopLoad<coop_mat16x16<f16, B>>(&ks[48u * SA + 32u], SA), s3);
        s0 = coopMultiplyAdd(qa3, coopLoad<coop_mat16x16<f16, B>>(&ks[48u], SA), s0);
        s1 = coopMultiplyAdd(qa3, coopLoad<coop_mat16x16<f16, B>>(&ks[16u * SA + 48u], SA), s1);
        s2 = coopMultiplyAdd(qa3, coopLoad<coop_mat16x16<f16, B>>(&ks[32u * SA + 48u], SA), s2);
        s3 = coopMultiplyAdd(qa3, coopLoad<coop_mat16x16<f16, B>>(&ks[48u * SA + 48u], SA), s3);
        coopStoreT(s0, &ss[srow], 64u);
        coopStoreT(s1, &ss[srow + 16u], 64u);
        coopStoreT(s2, &ss[srow + 32u], 64u);
        coopStoreT(s3, &ss[srow + 48u], 64u);
        workgroupBarrier();
        // Online softmax of the row (scaled scores, keys past the window masked).
        var mx = NEG;
        for (var j = 0u; j < 32u; j = j + 1u) {
            var v = ss[sb + j] * p.scale;
            if (j0 + half + j >= p.frames) { v = NEG; }
            ss[sb + j] = v;
            mx = max(mx, v);
        }
        mx = max(mx, subgroupShuffleXor(mx, 1u));
        let mn = max(m, mx);
        let corr = exp(m - mn);
        var sum = 0.0;
        for (var j = 0u; j < 32u; j = j + 1u) {
            let e = exp(ss[sb + j] - mn);
            ps[pb + j] = f16(e);
            sum = sum + e;
        }
        l = l * corr + sum + subgroupShuffleXor(sum, 1u);
        m = mn;
        workgroupBarrier();
        // P·V for 16 rows × 64 channels: V [key][channel] is row-major.
        var o0 = coopLoadT<coop_mat16x16<f32, C>>(&zero[0], 16u);
        var o1 = coopLoadT<coop_mat16x16<f32, C>>(&zero[0], 16u);
        var o2 = coopLoadT<coop_mat16x16<f32, C>>(&zero[0], 16u);
        var o3 = coopLoadT<coop_mat16x16<f32, C>>(&zero[0], 16u);
        for (var kk = 0u; kk < KT; kk = kk + 16u) {
            let pa = coopLoadT<coop_mat16x16<f16, A>>(&ps[prow + kk], SA);
            o0 = coopMultiplyAdd(pa, coopLoadT<coop_mat16x16<f16, B>>(&vs[kk * SA], SA), o0);
            o1 = coopMultiplyAdd(pa, coopLoadT<coop_mat16x16<f16, B>>(&vs[kk * SA + 16u], SA), o1);
            o2 = coopMultiplyAdd(pa, coopLoadT<coop_mat16x16<f16, B>>(&vs[kk * SA + 32u], SA), o2);
            o3 = coopMultiplyAdd(pa, coopLoadT<coop_mat16x16<f16, B>>(&vs[kk * SA + 48u], SA), o3);
        }
        coopStoreT(o0, &ss[srow], 64u);
        coopStoreT(o1, &ss[srow + 16u], 64u);
        coopStoreT(o2, &ss[srow + 32u], 64u);
        coopStoreT(o3, &ss[srow + 48u], 64u);
        workgroupBarrier();
        for (var c = 0u; c < 32u; c = c + 1u) { o[c] = o[c] * corr + ss[sb + c]; }
    }
    let r = q0 + row;
    if (r < p.frames) {
        let inv = 1.0 / l;
        let ob = (r * p.o_ld + p.o_off + hc + half) / 4u;
        for (var c = 0u; c < 8u; c = c + 1u) {
            let v = vec4<f32>(o[4u * c], o[4u * c + 1u], o[4u * c + 2u], o[4u * c + 3u]) * inv;
            out[ob + c] = vec4<OTYPE>(v);
        }
    }
}
