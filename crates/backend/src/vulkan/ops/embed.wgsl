// Token embedding gather plus learned positions (spec §4.6, no √d scale):
// x[r, :] = E[tok[r], :] + pos[base + r % t, :].
struct P { rows: u32, d: u32, t: u32, base: u32 }
@group(0) @binding(0) var<storage, read> tok: array<u32>;
@group(0) @binding(1) var<storage, read> emb: array<WTYPE>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<uniform> p: P;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let e = (wg.x + wg.y * GRID_X) * 256u + t;
    if (e >= p.rows * p.d) { return; }
    let r = e / p.d;
    let c = e % p.d;
    x[e] = f32(emb[tok[r] * p.d + c]) + pos[(p.base + r % p.t) * p.d + c];
}
