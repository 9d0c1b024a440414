// Flash-decoding cross-attention of a decoder step (spec §4.5): one
// workgroup per (key chunk, head, window) computes the attention of every
// query row of that window (all its beams) over the chunk's keys, so the
// window's K/V are read once per step, with an online softmax over tiles
// of 64 keys. With one chunk it writes the normalised output; otherwise it
// writes (unnormalised output, running max, sum) partials that `reduce`
// combines.
// grp[w · (R + 1)] is the number of rows of window w, followed by the rows.
struct P {
    windows: u32, heads: u32, dh: u32, lk: u32,
    row_stride: u32, slot_stride: u32, k_off: u32, v_off: u32,
    q_stride: u32, o_stride: u32, nch: u32, chunk: u32,
    scale: f32, p0: u32, p1: u32, p2: u32,
}
const R: u32 = FLASH_ROWS;
const NEG: f32 = -3.4028235e38;

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grp: array<u32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: P;

var<workgroup> qs: array<vec4<f32>, R * 32u>; // [row][dh / 4], dh ≤ 128
var<workgroup> ps: array<f32, R * 64u>;       // [row][key of the tile]
var<workgroup> ml: array<vec3<f32>, R>;        // running max, sum, last correction

@compute @workgroup_size(64)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let ch = wg.x;
    let h = wg.y;
    let w = wg.z;
    let g = w * (R + 1u);
    let n = min(grp[g], R);
    let d4 = p.dh / 4u;
    for (var i = t; i < R * d4; i = i + 64u) {
        let r = i / d4;
        let c4 = i % d4;
        var v = vec4<f32>(0.0);
        if (r < n) {
            let qb = grp[g + 1u + r] * p.q_stride + h * p.dh + 4u * c4;
            v = vec4<f32>(q[qb], q[qb + 1u], q[qb + 2u], q[qb + 3u]) * p.scale;
        }
        qs[r * 32u + c4] = v;
    }
    if (t < R) { ml[t] = vec3<f32>(NEG, 0.0, 1.0); }
    workgroupBarrier();
    let j0 = ch * p.chunk;
    let j1 = min(j0 + p.chunk, p.lk);
    let base = w * p.slot_stride + h * p.dh;
    var acc: array<f32, R>;
    var acc2: array<f32, R>;
    for (var j = j0; j < j1; j = j + 64u) {
        let jj = j + t;
        var s: array<f32, R>;
        if (jj < j1) {
            let kb = (p.k_off + base + jj * p.row_stride) / 4u;
            for (var c4 = 0u; c4 < d4; c4 = c4 + 1u) {
                let k4 = kv[kb + c4];
                for (var r = 0u; r < R; r = r + 1u) { s[r] = s[r] + dot(qs[r * 32u + c4], k4); }
            }
        }
        for (var r = 0u; r < R; r = r + 1u) {
            var v = NEG;
            if (jj < j1 && r < n) { v = s[r]; }
            ps[r * 64u + t] = v;
        }
        workgroupBarrier();
        if (t < n) {
            var mt = NEG;
            for (var i = 0u; i < 64u; i = i + 1u) { mt = max(mt, ps[t * 64u + i]); }
            let old = ml[t];
            let m = max(old.x, mt);
            let corr = exp(old.x - m);
            var sum = 0.0;
            for (var i = 0u; i < 64u; i = i + 1u) {
                var e = 0.0;
                if (j + i < j1) { e = exp(ps[t * 64u + i] - m); }
                ps[t * 64u + i] = e;
                sum = sum + e;
            }
            ml[t] = vec3<f32>(m, old.y * corr + sum, corr);
        }
        workgroupBarrier();
        let nk = min(64u, j1 - j);
        for (var r = 0u; r < R; r = r + 1u) {
            let corr = ml[r].z;
            acc[r] = acc[r] * corr;
            acc2[r] = acc2[r] * corr;
        }
        for (var i = 0u; i < nk; i = i + 1u) {
            let vb = (p.v_off + base + (j + i) * p.row_stride) / 4u;
            var v1 = 0.0;
            var v2 = 0.0;
            if (t < p.dh) { v1 = kv[vb + t / 4u][t % 4u]; }
            if (t + 64u < p.dh) { v2 = kv[vb + (t + 64u) / 4u][t % 4u]; }
            for (var r = 0u; r < R; r = r + 1u) {
                let e = ps[r * 64u + i];
                acc[r] = fma(e, v1, acc[r]);
                acc2[r] = fma(e, v2, acc2[r]);
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < n; r = r + 1u) {
        let row = grp[g + 1u + r];
        let f = ml[r];
        if (p.nch == 1u) {
            let ob = row * p.o_stride + h * p.dh;
            if (t < p.dh) { out[ob + t] = acc[r] / f.y; }
            if (t + 64u < p.dh) { out[ob + t + 64u] = acc2[r] / f.y; }
        } else {
            let pb = (((w * p.heads + h) * p.nch + ch) * R + r) * (p.dh + 2u);
            if (t < p.dh) { part[pb + t] = acc[r]; }
            if (t + 64u < p.dh) { part[pb + t + 64u] = acc2[r]; }
            if (t == 0u) {
                part[pb + p.dh] = f.x;
                part[pb + p.dh + 1u] = f.y;
            }
        }
    }
}

// One workgroup per (row of the window, head, window): combine the chunks.
@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = wg.x;
    let h = wg.y;
    let w = wg.z;
    let g = w * (R + 1u);
    if (r >= min(grp[g], R)) { return; }
    let row = grp[g + 1u + r];
    let first = ((w * p.heads + h) * p.nch * R + r) * (p.dh + 2u);
    let step = R * (p.dh + 2u);
    var m = NEG;
    for (var c = 0u; c < p.nch; c = c + 1u) { m = max(m, part[first + c * step + p.dh]); }
    var l = 0.0;
    for (var c = 0u; c < p.nch; c = c + 1u) {
        let pb = first + c * step;
        l = l + exp(part[pb + p.dh] - m) * part[pb + p.dh + 1u];
    }
    for (var d = t; d < p.dh; d = d + 64u) {
        var o = 0.0;
        for (var c = 0u; c < p.nch; c = c + 1u) {
            let pb = first + c * step;
            o = o + exp(part[pb + p.dh] - m) * part[pb + d];
        }
        out[row * p.o_stride + h * p.dh + d] = o / l;
    }
}
