// LayerNorm of rows of width d (spec §4.4): (x − mean) / sqrt(var + eps) · γ + β,
// biased variance, two passes over the row. One workgroup per row; input
// rows `in_stride` apart (so the final norm can pick strided rows). The
// output is OTYPE: f32, or f16 for the encoder's float16 activations.
struct P {
    rows: u32, d: u32, in_off: u32, in_stride: u32,
    out_off: u32, out_stride: u32, g_off: u32, b_off: u32,
    eps: f32, p0: u32, p1: u32, p2: u32,
}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<OTYPE>;
@group(0) @binding(4) var<uniform> p: P;

var<workgroup> red: array<f32, 128>;

fn reduce(t: u32, v: f32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = 64u; s > 0u; s = s >> 1u) {
        if (t < s) { red[t] = red[t] + red[t + s]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wg.x + wg.y * GRID_X;
    if (row >= p.rows) { return; }
    let xo = p.in_off + row * p.in_stride;
    var s = 0.0;
    for (var j = t; j < p.d; j = j + 128u) { s = s + x[xo + j]; }
    let mean = reduce(t, s) / f32(p.d);
    var v = 0.0;
    for (var j = t; j < p.d; j = j + 128u) {
        let c = x[xo + j] - mean;
        v = v + c * c;
    }
    let inv = 1.0 / sqrt(reduce(t, v) / f32(p.d) + p.eps);
    let oo = p.out_off + row * p.out_stride;
    for (var j = t; j < p.d; j = j + 128u) {
        out[oo + j] = OTYPE((x[xo + j] - mean) * inv * gamma[p.g_off + j] + beta[p.b_off + j]);
    }
}
