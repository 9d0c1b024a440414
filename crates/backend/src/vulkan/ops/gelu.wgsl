// Exact (erf) GELU in place (spec §4.4); gelu_erf comes from ops/mod.rs.
struct P { n: u32, off: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> p: P;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = (wg.x + wg.y * GRID_X) * 256u + t;
    if (i < p.n) { x[p.off + i] = gelu_erf(x[p.off + i]); }
}
