// Few-row matmul (decoder steps, up to 16 rows): out[r, n] = epi(Σ_k xin[r, k] · W[n, k]).
// The x rows are staged in workgroup memory 256 columns at a time (with the
// LayerNorm applied on the way in when FLAG_NORM is set) and the weight is
// read as 4-vectors. `main` (GPUs): a workgroup owns 8 weight rows (output
// columns), one per team of 32 lanes, each lane reading every 32nd 4-vector
// of the row (two loads in flight per chunk, coalesced across the team),
// and the team's partial sums are reduced in workgroup memory. `percol`
// (software Vulkan, whose invocations are CPU SIMD lanes and whose barriers
// are costly): each invocation owns one column and reads its whole row, so
// there is no reduction and one barrier per chunk. Epilogue: int8
// row scale, bias, GELU, residual add, and, for the fused self-attention
// QKV projection (FLAG_KV), the K and V columns are also appended to the
// layer's cache at each sequence's slot and position.
struct P {
    n: u32, k: u32, ldx: u32, ldo: u32,
    x_off: u32, o_off: u32, b_off: u32, flags: u32,
    eps: f32, kv_d: u32, kv_cap: u32, kv_base: u32,
    kv_t: u32, kv_vo: u32, g_off: u32, w_off4: u32,
}
const FLAG_BIAS: u32 = 1u;
const FLAG_GELU: u32 = 2u;
const FLAG_ACC: u32 = 4u;
const FLAG_NORM: u32 = 8u;
const FLAG_KV: u32 = 16u;
const FLAG_SCALE: u32 = 32u;
const ROWS: u32 = GEMV_ROWS;
const KC: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
WEIGHTS(1)
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> gb: array<f32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> cache: array<f32>;
@group(0) @binding(7) var<uniform> p: P;

// [ROWS][KC] staged inputs; reused for the reductions ([ROWS][256]).
var<workgroup> xs: array<f32, ROWS * KC>;
var<workgroup> stat: array<vec2<f32>, ROWS>;

fn xs_get(i: u32) -> f32 { return xs[i]; }
fn xs_set(i: u32, v: f32) { xs[i] = v; }
fn xs4(i: u32) -> vec4<f32> { return vec4<f32>(xs[i], xs[i + 1u], xs[i + 2u], xs[i + 3u]); }

// Stage chunk k0 of every row (with the LayerNorm applied), `lanes`
// invocations cooperating.
fn stage(t: u32, lanes: u32, k0: u32) {
    for (var i = t; i < ROWS * KC; i = i + lanes) {
        let r = i / KC;
        let gk = k0 + i % KC;
        var v = 0.0;
        if (gk < p.k) {
            v = x[p.x_off + r * p.ldx + gk];
            if ((p.flags & FLAG_NORM) != 0u) {
                v = (v - stat[r].x) * stat[r].y * gb[p.g_off + gk] + gb[p.g_off + p.k + gk];
            }
        }
        xs[i] = v;
    }
}

// Sum of `v` over the 32 lanes of each team (every invocation calls it).
fn team_sum(t: u32, v: f32) -> f32 {
    xs_set(t, v);
    workgroupBarrier();
    for (var s = 16u; s > 0u; s = s >> 1u) {
        if ((t & 31u) < s) { xs_set(t, xs_get(t) + xs_get(t + s)); }
        workgroupBarrier();
    }
    let r = xs_get(t & ~31u);
    workgroupBarrier();
    return r;
}

fn epilogue(r: u32, c: u32, acc: f32) {
    var v = acc;
    if ((p.flags & FLAG_SCALE) != 0u) { v = v / scale[c]; }
    if ((p.flags & FLAG_BIAS) != 0u) { v = v + bias[p.b_off + c]; }
    if ((p.flags & FLAG_GELU) != 0u) { v = gelu_erf(v); }
    let i = p.o_off + r * p.ldo + c;
    if ((p.flags & FLAG_ACC) != 0u) { out[i] = out[i] + v; } else { out[i] = v; }
    if ((p.flags & FLAG_KV) != 0u && c >= p.kv_d) {
        let which = (c - p.kv_d) / p.kv_d;
        let cc = (c - p.kv_d) % p.kv_d;
        let seq = r / p.kv_t;
        let pos = p.kv_base + r % p.kv_t;
        cache[which * p.kv_vo + (seq * p.kv_cap + pos) * p.kv_d + cc] = v;
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let team = t >> 5u;
    let lane = t & 31u;
    let col0 = (wg.x + wg.y * GRID_X) * 8u;
    let col = col0 + team;
    if ((p.flags & FLAG_NORM) != 0u) {
        // LayerNorm statistics of every row, two passes as the CPU's.
        for (var r0 = 0u; r0 < ROWS; r0 = r0 + 8u) {
            let r = r0 + team;
            let xo = p.x_off + r * p.ldx;
            var s = 0.0;
            if (r < ROWS) { for (var k = lane; k < p.k; k = k + 32u) { s = s + x[xo + k]; } }
            let mean = team_sum(t, s) / f32(p.k);
            var v = 0.0;
            if (r < ROWS) {
                for (var k = lane; k < p.k; k = k + 32u) { let c = x[xo + k] - mean; v = v + c * c; }
            }
            let inv = 1.0 / sqrt(team_sum(t, v) / f32(p.k) + p.eps);
            if (r < ROWS && lane == 0u) { stat[r] = vec2<f32>(mean, inv); }
        }
        workgroupBarrier();
    }
    var acc: array<f32, ROWS>;
    let wrow = p.w_off4 + col * (p.k / 4u);
    for (var k0 = 0u; k0 < p.k; k0 = k0 + KC) {
        // The chunk's weights are loaded before the inputs are staged, so
        // the two memory round trips overlap instead of following each
        // other across the barrier.
        let q0 = k0 / 4u + lane;
        let q1 = q0 + 32u;
        var w0 = vec4<f32>(0.0);
        var w1 = vec4<f32>(0.0);
        if (col < p.n && q0 * 4u < p.k) { w0 = wl4(wrow + q0); }
        if (col < p.n && q1 * 4u < p.k) { w1 = wl4(wrow + q1); }
        stage(t, 256u, k0);
        workgroupBarrier();
        if (col < p.n) {
            for (var r = 0u; r < ROWS; r = r + 1u) {
                acc[r] = acc[r] + dot(w0, xs4(r * KC + 4u * lane)) + dot(w1, xs4(r * KC + 4u * lane + 128u));
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < ROWS; r = r + 1u) { xs_set(r * 256u + t, acc[r]); }
    workgroupBarrier();
    for (var s = 16u; s > 0u; s = s >> 1u) {
        if (lane < s) {
            for (var r = 0u; r < ROWS; r = r + 1u) {
                xs_set(r * 256u + t, xs_get(r * 256u + t) + xs_get(r * 256u + t + s));
            }
        }
        workgroupBarrier();
    }
    for (var i = t; i < 8u * ROWS; i = i + 256u) {
        let c = col0 + i % 8u;
        let r = i / 8u;
        if (c < p.n) { epilogue(r, c, xs_get(r * 256u + (i % 8u) * 32u)); }
    }
}

// One column per invocation, 64 columns per workgroup (see the top).
@compute @workgroup_size(64)
fn percol(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let col = (wg.x + wg.y * GRID_X) * 64u + t;
    if ((p.flags & FLAG_NORM) != 0u) {
        if (t < ROWS) {
            let xo = p.x_off + t * p.ldx;
            var s = 0.0;
            for (var k = 0u; k < p.k; k = k + 1u) { s = s + x[xo + k]; }
            let mean = s / f32(p.k);
            var v = 0.0;
            for (var k = 0u; k < p.k; k = k + 1u) { let c = x[xo + k] - mean; v = v + c * c; }
            stat[t] = vec2<f32>(mean, 1.0 / sqrt(v / f32(p.k) + p.eps));
        }
        workgroupBarrier();
    }
    var acc: array<f32, ROWS>;
    let wrow = p.w_off4 + col * (p.k / 4u);
    for (var k0 = 0u; k0 < p.k; k0 = k0 + KC) {
        stage(t, 64u, k0);
        workgroupBarrier();
        if (col < p.n) {
            let n4 = min(KC, p.k - k0) / 4u;
            for (var q = 0u; q < n4; q = q + 1u) {
                let w4 = wl4(wrow + k0 / 4u + q);
                for (var r = 0u; r < ROWS; r = r + 1u) {
                    acc[r] = acc[r] + dot(w4, xs4(r * KC + 4u * q));
                }
            }
        }
        workgroupBarrier();
    }
    if (col < p.n) {
        for (var r = 0u; r < ROWS; r = r + 1u) { epilogue(r, col, acc[r]); }
    }
}
