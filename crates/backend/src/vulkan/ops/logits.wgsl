// The logit rules of a temperature-0 decoding step (spec §6.4–§6.6) on the
// GPU, so a step reads back K candidates per row instead of the vocabulary.
// Two passes over `[rows, v]` logits, each one workgroup per (vocabulary
// chunk, row):
//   `stats`: per chunk, the max and Σexp(x − max) of the masked text ids
//            (below tb), the masked timestamp ids and the raw row;
//   `top`:   combines every chunk's stats into the row's, decides the
//            timestamp-probability check (text masked when the timestamps'
//            log-sum-exp beats the best text token), then ranks the chunk's
//            ((x − max) − ln Σ) + score values and writes its best K
//            (higher value, then lower id: CTranslate2's order).
// The host merges the chunks' lists. Masked ids rank as the lowest finite
// float (CT2's mask value; the host reads it as −inf). NaN/inf logits are
// left out and flagged.
// rowp[r]: score (f32 bits), flags, two masked id ranges [a, b).
// out[r]: header (no-speech probability, non-finite flag, max, ln Σ), then
// nch lists of K (value bits, id) pairs; id 0xffffffff = empty.
struct P {
    v: u32, rows: u32, nch: u32, chunk: u32,
    tb: u32, ns: u32, mw: u32, l_off: u32,
    ldl: u32, o_stride: u32, p0: u32, p1: u32,
}
const K: u32 = TOPK;
const WG: u32 = 64u;
const NEG: f32 = -3.4028235e38;
const EMPTY: u32 = 0xffffffffu;
const HDR: u32 = 4u;
const F_BEGIN: u32 = 1u;
const F_TS: u32 = 2u;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> masks: array<u32>;
@group(0) @binding(2) var<storage, read> rowp: array<u32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<uniform> p: P;

var<workgroup> red: array<vec4<f32>, WG>;
var<workgroup> lv: array<f32, WG * K>;
var<workgroup> li: array<u32, WG * K>;

// NaN or ±inf, by the bits (a compiler may assume `x != x` is false).
fn bad(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) >= 0x7f800000u; }

fn is_masked(j: u32, rp: u32) -> bool {
    let w = j >> 5u;
    let bit = 1u << (j & 31u);
    if ((masks[w] & bit) != 0u) { return true; }
    if ((rowp[rp + 1u] & F_BEGIN) != 0u && (masks[p.mw + w] & bit) != 0u) { return true; }
    return (j >= rowp[rp + 2u] && j < rowp[rp + 3u]) || (j >= rowp[rp + 4u] && j < rowp[rp + 5u]);
}

fn reduce_max(t: u32, v: vec4<f32>) -> vec4<f32> {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (t < s) { red[t] = max(red[t], red[t + s]); }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(t: u32, v: vec4<f32>) -> vec4<f32> {
    red[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (t < s) { red[t] = red[t] + red[t + s]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn stats_pass(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let ch = wg.x;
    let r = wg.y;
    let rp = r * 8u;
    let lo = p.l_off + r * p.ldl;
    let j0 = ch * p.chunk;
    let j1 = min(j0 + p.chunk, p.v);
    // Two passes (max, then Σexp(x − max)) as the CPU's softmax.
    var m = vec4<f32>(NEG, NEG, NEG, 0.0);
    for (var j = j0 + t; j < j1; j = j + WG) {
        let x = logits[lo + j];
        if (bad(x)) { m.w = 1.0; continue; }
        m.z = max(m.z, x);
        if (!is_masked(j, rp)) {
            if (j < p.tb) { m.x = max(m.x, x); } else { m.y = max(m.y, x); }
        }
    }
    m = reduce_max(t, m);
    var s = vec4<f32>(0.0);
    for (var j = j0 + t; j < j1; j = j + WG) {
        let x = logits[lo + j];
        if (bad(x)) { continue; }
        s.z = s.z + exp(x - m.z);
        if (!is_masked(j, rp)) {
            if (j < p.tb) { s.x = s.x + exp(x - m.x); } else { s.y = s.y + exp(x - m.y); }
        }
    }
    s = reduce_sum(t, s);
    if (t == 0u) {
        let b = (r * p.nch + ch) * 8u;
        stats[b] = m.x;
        stats[b + 1u] = s.x;
        stats[b + 2u] = m.y;
        stats[b + 3u] = s.y;
        stats[b + 4u] = m.z;
        stats[b + 5u] = s.z;
        stats[b + 6u] = m.w;
    }
}

// (m, s) of two parts combined, each s relative to its own m.
fn combine(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let m = max(a.x, b.x);
    return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

// Whether (v, i) ranks before (bv, bi); an empty slot ranks last.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return bi == EMPTY || (i != EMPTY && (v > bv || (v == bv && i < bi)));
}

@compute @workgroup_size(64)
fn top_pass(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let ch = wg.x;
    let r = wg.y;
    let rp = r * 8u;
    let lo = p.l_off + r * p.ldl;
    // The row's statistics from every chunk's.
    var text = vec2<f32>(NEG, 0.0);
    var ts = vec2<f32>(NEG, 0.0);
    var raw = vec2<f32>(NEG, 0.0);
    var nonfinite = 0.0;
    for (var c = 0u; c < p.nch; c = c + 1u) {
        let b = (r * p.nch + c) * 8u;
        text = combine(text, vec2<f32>(stats[b], stats[b + 1u]));
        ts = combine(ts, vec2<f32>(stats[b + 2u], stats[b + 3u]));
        raw = combine(raw, vec2<f32>(stats[b + 4u], stats[b + 5u]));
        nonfinite = max(nonfinite, stats[b + 6u]);
    }
    let full = combine(text, ts);
    let live = full.x > NEG;
    let ls = log(full.y);
    // §6.5 step 4, as `timestamp_mass_dominates` computes it.
    var mask_text = false;
    if ((rowp[rp + 1u] & F_TS) != 0u && live && ts.x > NEG) {
        if (text.x <= NEG) {
            mask_text = true;
        } else {
            let text_lp = (text.x - full.x) - ls;
            let ts_lse = ((ts.x - full.x) - ls) + log(ts.y);
            mask_text = ts_lse > text_lp;
        }
    }
    var mx = full.x;
    var lse = ls;
    if (mask_text) {
        mx = ts.x;
        lse = log(ts.y);
    }
    let score = bitcast<f32>(rowp[rp]);
    // This invocation's best K of the chunk, then a tree merge.
    var tv: array<f32, K>;
    var ti: array<u32, K>;
    for (var i = 0u; i < K; i = i + 1u) { tv[i] = NEG; ti[i] = EMPTY; }
    let j0 = ch * p.chunk;
    let j1 = min(j0 + p.chunk, p.v);
    for (var j = j0 + t; j < j1; j = j + WG) {
        let x = logits[lo + j];
        if (bad(x)) { continue; }
        var v = NEG;
        if (live && !is_masked(j, rp) && !(mask_text && j < p.tb)) {
            v = ((x - mx) - lse) + score;
        }
        if (better(v, j, tv[K - 1u], ti[K - 1u])) {
            var pos = K - 1u;
            while (pos > 0u && better(v, j, tv[pos - 1u], ti[pos - 1u])) {
                tv[pos] = tv[pos - 1u];
                ti[pos] = ti[pos - 1u];
                pos = pos - 1u;
            }
            tv[pos] = v;
            ti[pos] = j;
        }
    }
    for (var i = 0u; i < K; i = i + 1u) {
        lv[t * K + i] = tv[i];
        li[t * K + i] = ti[i];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (t < s) {
            var a = 0u;
            var b = 0u;
            let pa = t * K;
            let pb = (t + s) * K;
            for (var n = 0u; n < K; n = n + 1u) {
                if (b >= K || (a < K && better(lv[pa + a], li[pa + a], lv[pb + b], li[pb + b]))) {
                    tv[n] = lv[pa + a];
                    ti[n] = li[pa + a];
                    a = a + 1u;
                } else {
                    tv[n] = lv[pb + b];
                    ti[n] = li[pb + b];
                    b = b + 1u;
                }
            }
        }
        workgroupBarrier();
        if (t < s) {
            for (var n = 0u; n < K; n = n + 1u) {
                lv[t * K + n] = tv[n];
                li[t * K + n] = ti[n];
            }
        }
        workgroupBarrier();
    }
    let ob = r * p.o_stride;
    if (t < K) {
        let o = ob + HDR + (ch * K + t) * 2u;
        out[o] = bitcast<u32>(lv[t]);
        out[o + 1u] = li[t];
    }
    if (ch == 0u && t == 0u) {
        var ns = 0.0;
        if (p.ns < p.v && raw.x > NEG) {
            let x = logits[lo + p.ns];
            ns = exp((x - raw.x) - log(raw.y));
        }
        out[ob] = bitcast<u32>(ns);
        out[ob + 1u] = u32(nonfinite);
        out[ob + 2u] = bitcast<u32>(mx);
        out[ob + 3u] = bitcast<u32>(lse);
    }
}
