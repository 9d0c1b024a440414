// Scaled dot-product attention for the decoder (spec §4.5): one workgroup
// per (query row, head). Row r belongs to sequence r / t at query position
// r % t. Keys and values of "slot" s start at k_off / v_off + s · slot_stride,
// rows kv_stride apart; the slot is the sequence itself (self-attention
// cache) or map[sequence] (cross-attention: the sequence's window), or,
// with use_map = 2, per key: key j of sequence s is in slot
// map[s · tcap + j] (the self-attention cache's history table: beams share
// their common history instead of copying it at each reorder).
// With causal != 0, query i sees keys 0 ..= base + i.
// With scores != 0 the pre-softmax (scaled) scores are also written to
// sc_out[s_off + (head · rows + r) · lk + j] (alignment, spec §7.1).
struct P {
    rows: u32, t: u32, heads: u32, dh: u32,
    q_off: u32, q_stride: u32, k_off: u32, v_off: u32,
    kv_stride: u32, slot_stride: u32, lk: u32, causal: u32,
    base: u32, use_map: u32, o_off: u32, o_stride: u32,
    scale: f32, scores: u32, s_off: u32, tcap: u32,
}
const MAX_KEYS: u32 = 1536u;
const MAX_DH: u32 = 256u;
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kv: array<f32>;
@group(0) @binding(2) var<storage, read> map: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> sc_out: array<f32>;
@group(0) @binding(5) var<uniform> p: P;

var<workgroup> sc: array<f32, 1536>;
var<workgroup> qs: array<f32, 256>;
var<workgroup> red: array<f32, 64>;
var<workgroup> slots: array<u32, 1536>;

// What both entry points derive from query row r (< p.rows) and head h:
// the sequence's slot (own or window map), the keys the row sees, where
// its keys and values start, and its history-table row. Also stages the query
// into `qs` (the caller's barrier follows).
struct Row { slot: u32, n: u32, kb: u32, vb: u32, tb: u32 }

fn row_of(r: u32, h: u32, t: u32) -> Row {
    let seq = r / p.t;
    let i = r % p.t;
    var slot = seq;
    if (p.use_map == 1u) { slot = map[seq]; }
    var n = p.lk;
    if (p.causal != 0u) { n = min(p.base + i + 1u, p.lk); }
    let qb = p.q_off + r * p.q_stride + h * p.dh;
    for (var c = t; c < p.dh; c = c + 64u) { qs[c] = q[qb + c]; }
    return Row(slot, n, p.k_off + h * p.dh, p.v_off + h * p.dh, seq * p.tcap);
}

// The slot holding key j of the row (per key through the history table).
fn key_slot(w: Row, j: u32) -> u32 {
    if (p.use_map == 2u) { return map[w.tb + j]; }
    return w.slot;
}

// The maximum / the sum of every invocation's `v` over the 64 of the workgroup.
fn wg_max(t: u32, v: f32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st = st >> 1u) {
        if (t < st) { red[t] = max(red[t], red[t + st]); }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();
    return m;
}

fn wg_sum(t: u32, v: f32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st = st >> 1u) {
        if (t < st) { red[t] = red[t] + red[t + st]; }
        workgroupBarrier();
    }
    let s = red[0];
    workgroupBarrier();
    return s;
}

// sc[j] = exp(sc[j] - m) for the row's n keys; this invocation's part of the sum.
fn exp_scores(t: u32, n: u32, m: f32) -> f32 {
    var sum = 0.0;
    for (var j = t; j < n; j = j + 64u) {
        let e = exp(sc[j] - m);
        sc[j] = e;
        sum = sum + e;
    }
    return sum;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = wg.x + wg.y * GRID_X;
    let h = wg.z;
    if (r >= p.rows) { return; }
    let w = row_of(r, h, t);
    workgroupBarrier();
    var mx = -3.4028235e38;
    for (var j = t; j < w.n; j = j + 64u) {
        var s = 0.0;
        let kr = w.kb + key_slot(w, j) * p.slot_stride + j * p.kv_stride;
        for (var c = 0u; c < p.dh; c = c + 1u) { s = fma(qs[c], kv[kr + c], s); }
        s = s * p.scale;
        sc[j] = s;
        mx = max(mx, s);
        if (p.scores != 0u) { sc_out[p.s_off + (h * p.rows + r) * p.lk + j] = s; }
    }
    let m = wg_max(t, mx);
    let inv = 1.0 / wg_sum(t, exp_scores(t, w.n, m));
    for (var c = t; c < p.dh; c = c + 64u) {
        var acc = 0.0;
        for (var j = 0u; j < w.n; j = j + 1u) {
            acc = fma(sc[j] * inv, kv[w.vb + key_slot(w, j) * p.slot_stride + j * p.kv_stride + c], acc);
        }
        out[p.o_off + r * p.o_stride + h * p.dh + c] = acc;
    }
}

// The same attention with the latency of `main`'s loops cut (a candidate
// for GPUs, `VKW_SDPA=fast`, timed by the device check): each key's slot
// is resolved into workgroup memory once (main looks the history table up
// again in the value loop, a load the value load then waits for), a key's
// dot product runs in four independent chains, and the value loop takes
// four keys per pass with independent sums. Same bindings, same results
// up to the order of float additions.
@compute @workgroup_size(64)
fn fast(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = wg.x + wg.y * GRID_X;
    let h = wg.z;
    if (r >= p.rows) { return; }
    let w = row_of(r, h, t);
    let n = w.n;
    for (var j = t; j < n; j = j + 64u) { slots[j] = key_slot(w, j); }
    workgroupBarrier();
    var mx = -3.4028235e38;
    let d4 = p.dh & ~3u;
    for (var j = t; j < n; j = j + 64u) {
        let kr = w.kb + slots[j] * p.slot_stride + j * p.kv_stride;
        var a0 = 0.0;
        var a1 = 0.0;
        var a2 = 0.0;
        var a3 = 0.0;
        for (var c = 0u; c < d4; c = c + 4u) {
            a0 = fma(qs[c], kv[kr + c], a0);
            a1 = fma(qs[c + 1u], kv[kr + c + 1u], a1);
            a2 = fma(qs[c + 2u], kv[kr + c + 2u], a2);
            a3 = fma(qs[c + 3u], kv[kr + c + 3u], a3);
        }
        for (var c = d4; c < p.dh; c = c + 1u) { a0 = fma(qs[c], kv[kr + c], a0); }
        let s = ((a0 + a1) + (a2 + a3)) * p.scale;
        sc[j] = s;
        mx = max(mx, s);
        if (p.scores != 0u) { sc_out[p.s_off + (h * p.rows + r) * p.lk + j] = s; }
    }
    let m = wg_max(t, mx);
    let inv = 1.0 / wg_sum(t, exp_scores(t, n, m));
    let n4 = n & ~3u;
    for (var c = t; c < p.dh; c = c + 64u) {
        let vc = w.vb + c;
        var b0 = 0.0;
        var b1 = 0.0;
        var b2 = 0.0;
        var b3 = 0.0;
        for (var j = 0u; j < n4; j = j + 4u) {
            b0 = fma(sc[j], kv[vc + slots[j] * p.slot_stride + j * p.kv_stride], b0);
            b1 = fma(sc[j + 1u], kv[vc + slots[j + 1u] * p.slot_stride + (j + 1u) * p.kv_stride], b1);
            b2 = fma(sc[j + 2u], kv[vc + slots[j + 2u] * p.slot_stride + (j + 2u) * p.kv_stride], b2);
            b3 = fma(sc[j + 3u], kv[vc + slots[j + 3u] * p.slot_stride + (j + 3u) * p.kv_stride], b3);
        }
        for (var j = n4; j < n; j = j + 1u) {
            b0 = fma(sc[j], kv[vc + slots[j] * p.slot_stride + j * p.kv_stride], b0);
        }
        out[p.o_off + r * p.o_stride + h * p.dh + c] = ((b0 + b1) + (b2 + b3)) * inv;
    }
}
