// Numerically stable softmax of rows of length n, in place; one workgroup
// per row (encoder attention probabilities, spec §4.5).
struct P { rows: u32, n: u32, off: u32, stride: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> p: P;

var<workgroup> red: array<f32, 128>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wg.x + wg.y * GRID_X;
    if (row >= p.rows) { return; }
    let o = p.off + row * p.stride;
    var m = -3.4028235e38;
    for (var j = t; j < p.n; j = j + 128u) { m = max(m, x[o + j]); }
    red[t] = m;
    workgroupBarrier();
    for (var s = 64u; s > 0u; s = s >> 1u) {
        if (t < s) { red[t] = max(red[t], red[t + s]); }
        workgroupBarrier();
    }
    let mx = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = t; j < p.n; j = j + 128u) {
        let e = exp(x[o + j] - mx);
        x[o + j] = e;
        sum = sum + e;
    }
    red[t] = sum;
    workgroupBarrier();
    for (var s = 64u; s > 0u; s = s >> 1u) {
        if (t < s) { red[t] = red[t] + red[t + s]; }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];
    for (var j = t; j < p.n; j = j + 128u) { x[o + j] = x[o + j] * inv; }
}
