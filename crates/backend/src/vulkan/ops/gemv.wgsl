// Few-row matmul (decoder steps, up to 16 rows): out[r, n] = epi(Σ_k xin[r, k] · W[n, k]).
// The x rows are staged in workgroup memory 256 columns at a time (with the
// LayerNorm applied on the way in when FLAG_NORM is set) and the weight is
// read as 4-vectors. `main` (GPUs): a workgroup owns 8 weight rows (output
// columns), one per team of 32 lanes, each lane reading every 32nd 4-vector
// of the row (two loads in flight per chunk, coalesced across the team),
// and the team's partial sums are reduced in workgroup memory. `direct`
// (GPUs, a candidate to replace `main`, see below) keeps `main`'s layout
// but reads the inputs from the buffer instead of staging them. `percol`
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

// LayerNorm statistics of every row into `stat`, two passes as the CPU's
// (256 invocations, teams of 32 lanes).
fn row_stats(t: u32) {
    let team = t >> 5u;
    let lane = t & 31u;
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

// Sum, for every row r, each team's `lanes` partial sums in
// xs[r * 256 + team * lanes ..] into the team's first slot (256
// invocations in teams of `lanes`, a power of two; barriers included).
fn team_reduce(t: u32, lanes: u32) {
    workgroupBarrier();
    for (var s = lanes / 2u; s > 0u; s = s >> 1u) {
        if (t % lanes < s) {
            for (var r = 0u; r < ROWS; r = r + 1u) {
                xs_set(r * 256u + t, xs_get(r * 256u + t) + xs_get(r * 256u + t + s));
            }
        }
        workgroupBarrier();
    }
}

// Sum each team's partial sums of every row (teams of `lanes`, one per
// column) and run the epilogue on the workgroup's 256 / lanes columns
// from col0.
fn reduce_store(t: u32, col0: u32, acc: ptr<function, array<f32, ROWS>>, lanes: u32) {
    let cpw = 256u / lanes;
    for (var r = 0u; r < ROWS; r = r + 1u) { xs_set(r * 256u + t, (*acc)[r]); }
    team_reduce(t, lanes);
    for (var i = t; i < cpw * ROWS; i = i + 256u) {
        let c = col0 + i % cpw;
        let r = i / cpw;
        if (c < p.n) { epilogue(r, c, xs_get(r * 256u + (i % cpw) * lanes)); }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let team = t >> 5u;
    let lane = t & 31u;
    let col0 = (wg.x + wg.y * GRID_X) * 8u;
    let col = col0 + team;
    if ((p.flags & FLAG_NORM) != 0u) { row_stats(t); }
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
    reduce_store(t, col0, &acc, 32u);
}

fn x4(r: u32, k: u32) -> vec4<f32> {
    let i = p.x_off + r * p.ldx + k;
    return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

// γ (`o` = 0) or β (`o` = k) of the LayerNorm at columns k .. k + 4.
fn gb4(o: u32, k: u32) -> vec4<f32> {
    let i = p.g_off + o + k;
    return vec4<f32>(gb[i], gb[i + 1u], gb[i + 2u], gb[i + 3u]);
}

// acc[r] += w · norm(x[r, k .. k + 4]) for every row (γ, β read once).
fn fma_rows(acc: ptr<function, array<f32, ROWS>>, w: vec4<f32>, k: u32) {
    if ((p.flags & FLAG_NORM) != 0u) {
        let g = gb4(0u, k);
        let b = gb4(p.k, k);
        for (var r = 0u; r < ROWS; r = r + 1u) {
            (*acc)[r] = (*acc)[r] + dot(w, (x4(r, k) - stat[r].x) * stat[r].y * g + b);
        }
    } else {
        for (var r = 0u; r < ROWS; r = r + 1u) { (*acc)[r] = (*acc)[r] + dot(w, x4(r, k)); }
    }
}

// Inputs read where they lie (a candidate for GPUs, chosen by the device
// check or VKW_GEMV=direct; see gemv.rs): the same 8 columns per workgroup
// and team per column as `main`, but no staging: each lane reads its
// 4-vectors of every row from the buffer (the 8 teams share them through
// the cache) with the LayerNorm applied as it goes, so the loop over the
// row has no barrier and four weight loads in flight per lane.
@compute @workgroup_size(256)
fn direct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let team = t >> 5u;
    let lane = t & 31u;
    let col0 = (wg.x + wg.y * GRID_X) * 8u;
    let col = col0 + team;
    if ((p.flags & FLAG_NORM) != 0u) { row_stats(t); }
    var acc: array<f32, ROWS>;
    if (col < p.n) {
        let wrow = p.w_off4 + col * (p.k / 4u);
        let k4 = p.k / 4u;
        var q = lane;
        // Four weight 4-vectors in flight per lane, then the remainder.
        for (; q + 96u < k4; q = q + 128u) {
            let w0 = wl4(wrow + q);
            let w1 = wl4(wrow + q + 32u);
            let w2 = wl4(wrow + q + 64u);
            let w3 = wl4(wrow + q + 96u);
            fma_rows(&acc, w0, 4u * q);
            fma_rows(&acc, w1, 4u * q + 128u);
            fma_rows(&acc, w2, 4u * q + 256u);
            fma_rows(&acc, w3, 4u * q + 384u);
        }
        for (; q < k4; q = q + 32u) { fma_rows(&acc, wl4(wrow + q), 4u * q); }
    }
    reduce_store(t, col0, &acc, 32u);
}

// Weight 4-vector `q` of the row from `wrow`, zero past the row's `k4`.
fn wl4_or0(wrow: u32, q: u32, k4: u32) -> vec4<f32> {
    if (q < k4) { return wl4(wrow + q); }
    return vec4<f32>(0.0);
}

// acc += w · norm(x[·, 4q ..]) where `q` lies in the row.
fn fma_in(acc: ptr<function, array<f32, ROWS>>, w: vec4<f32>, q: u32, k4: u32) {
    if (q < k4) { fma_rows(acc, w, 4u * q); }
}

// `row_stats` with all 256 invocations on every row at once: each reads
// its columns t, t + 256, ... of all rows (k = 1280: 5 independent loads a
// row, where `row_stats` gives a row to one team of 32 lanes, 40 loads
// each, one after the other), then a tree over workgroup memory. Two
// passes (mean, then the centred squares) as the CPU's.
fn row_stats_par(t: u32) {
    var s: array<f32, ROWS>;
    for (var k = t; k < p.k; k = k + 256u) {
        for (var r = 0u; r < ROWS; r = r + 1u) { s[r] = s[r] + x[p.x_off + r * p.ldx + k]; }
    }
    for (var r = 0u; r < ROWS; r = r + 1u) { xs_set(r * 256u + t, s[r]); }
    team_reduce(t, 256u);
    var mean: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r = r + 1u) {
        mean[r] = xs_get(r * 256u) / f32(p.k);
        s[r] = 0.0;
    }
    for (var k = t; k < p.k; k = k + 256u) {
        for (var r = 0u; r < ROWS; r = r + 1u) {
            let c = x[p.x_off + r * p.ldx + k] - mean[r];
            s[r] = s[r] + c * c;
        }
    }
    // Every invocation has read the means before they are overwritten.
    workgroupBarrier();
    for (var r = 0u; r < ROWS; r = r + 1u) { xs_set(r * 256u + t, s[r]); }
    team_reduce(t, 256u);
    if (t < ROWS) { stat[t] = vec2<f32>(mean[t], 1.0 / sqrt(xs_get(t * 256u) / f32(p.k) + p.eps)); }
    workgroupBarrier();
}

// A team of WIDE lanes per column (a candidate for GPUs, chosen by the
// device check or VKW_GEMV=wide; see gemv.rs): WIDE (32 to 256) is chosen
// from k so that a lane reads about 8 weight 4-vectors, and a lane issues
// all 8 loads before its first multiply-add, so the whole weight row of a
// column is in flight at once for the decoder's widths (one memory round
// trip, where `main` makes one per 256-column chunk and `direct` one per
// 4 loads). 256 / WIDE columns per workgroup; the team's partial sums are
// reduced in workgroup memory as in `main`; the LayerNorm statistics come
// from `row_stats_par`.
const WIDE: u32 = GEMV_WIDE;
@compute @workgroup_size(256)
fn wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let cpw = 256u / WIDE;
    let team = t / WIDE;
    let lane = t % WIDE;
    let col0 = (wg.x + wg.y * GRID_X) * cpw;
    let col = col0 + team;
    if ((p.flags & FLAG_NORM) != 0u) { row_stats_par(t); }
    var acc: array<f32, ROWS>;
    if (col < p.n) {
        let wrow = p.w_off4 + col * (p.k / 4u);
        let k4 = p.k / 4u;
        for (var q = lane; q < k4; q = q + 8u * WIDE) {
            let w0 = wl4_or0(wrow, q, k4);
            let w1 = wl4_or0(wrow, q + WIDE, k4);
            let w2 = wl4_or0(wrow, q + 2u * WIDE, k4);
            let w3 = wl4_or0(wrow, q + 3u * WIDE, k4);
            let w4 = wl4_or0(wrow, q + 4u * WIDE, k4);
            let w5 = wl4_or0(wrow, q + 5u * WIDE, k4);
            let w6 = wl4_or0(wrow, q + 6u * WIDE, k4);
            let w7 = wl4_or0(wrow, q + 7u * WIDE, k4);
            fma_in(&acc, w0, q, k4);
            fma_in(&acc, w1, q + WIDE, k4);
            fma_in(&acc, w2, q + 2u * WIDE, k4);
            fma_in(&acc, w3, q + 3u * WIDE, k4);
            fma_in(&acc, w4, q + 4u * WIDE, k4);
            fma_in(&acc, w5, q + 5u * WIDE, k4);
            fma_in(&acc, w6, q + 6u * WIDE, k4);
            fma_in(&acc, w7, q + 7u * WIDE, k4);
        }
    }
    reduce_store(t, col0, &acc, WIDE);
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
