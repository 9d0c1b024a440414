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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = wg.x + wg.y * GRID_X;
    let h = wg.z;
    if (r >= p.rows) { return; }
    let seq = r / p.t;
    let i = r % p.t;
    var slot = seq;
    if (p.use_map == 1u) { slot = map[seq]; }
    var n = p.lk;
    if (p.causal != 0u) { n = min(p.base + i + 1u, p.lk); }
    let qb = p.q_off + r * p.q_stride + h * p.dh;
    let kb = p.k_off + h * p.dh;
    let vb = p.v_off + h * p.dh;
    let tb = seq * p.tcap;
    for (var c = t; c < p.dh; c = c + 64u) { qs[c] = q[qb + c]; }
    workgroupBarrier();
    var mx = -3.4028235e38;
    for (var j = t; j < n; j = j + 64u) {
        var s = 0.0;
        var sj = slot;
        if (p.use_map == 2u) { sj = map[tb + j]; }
        let kr = kb + sj * p.slot_stride + j * p.kv_stride;
        for (var c = 0u; c < p.dh; c = c + 1u) { s = fma(qs[c], kv[kr + c], s); }
        s = s * p.scale;
        sc[j] = s;
        mx = max(mx, s);
        if (p.scores != 0u) { sc_out[p.s_off + (h * p.rows + r) * p.lk + j] = s; }
    }
    red[t] = mx;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st = st >> 1u) {
        if (t < st) { red[t] = max(red[t], red[t + st]); }
        workgroupBarrier();
    }
    let m = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = t; j < n; j = j + 64u) {
        let e = exp(sc[j] - m);
        sc[j] = e;
        sum = sum + e;
    }
    red[t] = sum;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st = st >> 1u) {
        if (t < st) { red[t] = red[t] + red[t + st]; }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];
    workgroupBarrier();
    for (var c = t; c < p.dh; c = c + 64u) {
        var acc = 0.0;
        for (var j = 0u; j < n; j = j + 1u) {
            var sj = slot;
            if (p.use_map == 2u) { sj = map[tb + j]; }
            acc = fma(sc[j] * inv, kv[vb + sj * p.slot_stride + j * p.kv_stride + c], acc);
        }
        out[p.o_off + r * p.o_stride + h * p.dh + c] = acc;
    }
}
