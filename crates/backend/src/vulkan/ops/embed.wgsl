// Token embedding gather plus learned positions (spec §4.6, no √d scale):
// x[r, :] = E[tok[r], :] + pos[base + r % t, :]; an int8 table's rows are
// divided by their scale (use_scale = 1).
struct P { rows: u32, d: u32, t: u32, base: u32, use_scale: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<storage, read> tok: array<u32>;
WEIGHTS(1)
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<uniform> p: P;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let e = (wg.x + wg.y * GRID_X) * 256u + t;
    if (e >= p.rows * p.d) { return; }
    let r = e / p.d;
    let c = e % p.d;
    var v = wl(tok[r] * p.d + c);
    if (p.use_scale != 0u) { v = v / scale[tok[r]]; }
    x[e] = v + pos[(p.base + r % p.t) * p.d + c];
}
