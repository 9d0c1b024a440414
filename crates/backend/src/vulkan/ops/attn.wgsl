// Flash attention of the encoder (spec §4.4): softmax(Q Kᵀ / √dh) V for one
// window, with no score matrix in memory. One workgroup per (block of 64
// query rows, head); each invocation owns one query row, holding q and the
// output accumulator in registers. Keys and values stream through
// workgroup memory KT at a time (read once per query block); the softmax
// is online: a running max and sum per row, the accumulator rescaled when
// the max grows.
// qkv rows (`ld` apart from `base`) hold Q at columns q_off + h·DH, K at
// k_off + h·DH, V at v_off + h·DH; XTYPE is f32 or f16 (the float16 mode's
// activations), accumulation is f32 everywhere.
struct P {
    frames: u32, ld: u32, base: u32, q_off: u32,
    k_off: u32, v_off: u32, o_ld: u32, o_off: u32,
    scale: f32, p0: u32, p1: u32, p2: u32,
}
const DH: u32 = HEAD_DIM;
const D4: u32 = HEAD_DIM / 4u;
const BQ: u32 = 64u;
const KT: u32 = KEY_TILE;
const NEG: f32 = -3.4028235e38;

@group(0) @binding(0) var<storage, read> qkv: array<vec4<XTYPE>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<OTYPE>>;
@group(0) @binding(2) var<uniform> p: P;

var<workgroup> ks: array<vec4<XTYPE>, KT * D4>;
var<workgroup> vs: array<vec4<XTYPE>, KT * D4>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let h = wg.y;
    let row = wg.x * BQ + t;
    let live = row < p.frames;
    var q: array<vec4<f32>, D4>;
    var o: array<vec4<f32>, D4>;
    if (live) {
        let qb = (p.base + row * p.ld + p.q_off + h * DH) / 4u;
        for (var c = 0u; c < D4; c = c + 1u) { q[c] = vec4<f32>(qkv[qb + c]) * p.scale; }
    }
    var m = NEG;
    var l = 0.0;
    for (var j0 = 0u; j0 < p.frames; j0 = j0 + KT) {
        for (var i = t; i < KT * D4; i = i + 64u) {
            let key = j0 + i / D4;
            let c = i % D4;
            var kv = vec4<XTYPE>(0.0);
            var vv = vec4<XTYPE>(0.0);
            if (key < p.frames) {
                let rb = (p.base + key * p.ld + h * DH) / 4u;
                kv = qkv[rb + p.k_off / 4u + c];
                vv = qkv[rb + p.v_off / 4u + c];
            }
            ks[i] = kv;
            vs[i] = vv;
        }
        workgroupBarrier();
        // Keys four at a time: four independent dot products (the GPU's
        // FMA latency is hidden by them, not by a per-key dependency chain
        // through a spilled score array), one rescale of the accumulator
        // per four keys. Padding keys of the last tile (zero-filled above)
        // are masked to NEG, so their weight exp(NEG - m) is 0.
        let nk = min(KT, p.frames - j0);
        for (var j = 0u; j < nk; j = j + 4u) {
            var s0 = 0.0;
            var s1 = 0.0;
            var s2 = 0.0;
            var s3 = 0.0;
            for (var c = 0u; c < D4; c = c + 1u) {
                let qc = q[c];
                s0 = s0 + dot(qc, vec4<f32>(ks[j * D4 + c]));
                s1 = s1 + dot(qc, vec4<f32>(ks[(j + 1u) * D4 + c]));
                s2 = s2 + dot(qc, vec4<f32>(ks[(j + 2u) * D4 + c]));
                s3 = s3 + dot(qc, vec4<f32>(ks[(j + 3u) * D4 + c]));
            }
            if (j + 1u >= nk) { s1 = NEG; }
            if (j + 2u >= nk) { s2 = NEG; }
            if (j + 3u >= nk) { s3 = NEG; }
            let mn = max(m, max(max(s0, s1), max(s2, s3)));
            let corr = exp(m - mn);
            let e0 = exp(s0 - mn);
            let e1 = exp(s1 - mn);
            let e2 = exp(s2 - mn);
            let e3 = exp(s3 - mn);
            l = l * corr + ((e0 + e1) + (e2 + e3));
            for (var c = 0u; c < D4; c = c + 1u) {
                var a = o[c] * corr;
                a = fma(vec4<f32>(e0), vec4<f32>(vs[j * D4 + c]), a);
                a = fma(vec4<f32>(e1), vec4<f32>(vs[(j + 1u) * D4 + c]), a);
                a = fma(vec4<f32>(e2), vec4<f32>(vs[(j + 2u) * D4 + c]), a);
                o[c] = fma(vec4<f32>(e3), vec4<f32>(vs[(j + 3u) * D4 + c]), a);
            }
            m = mn;
        }
        workgroupBarrier();
    }
    if (live) {
        let ob = (row * p.o_ld + p.o_off + h * DH) / 4u;
        let inv = 1.0 / l;
        for (var c = 0u; c < D4; c = c + 1u) { out[ob + c] = vec4<OTYPE>(o[c] * inv); }
    }
}
