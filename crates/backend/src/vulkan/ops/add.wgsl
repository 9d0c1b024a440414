// x[x_off + i] += y[y_off + i % period]: residual adds (period = n) and
// broadcast bias / position adds (period = row width or table size).
struct P { n: u32, x_off: u32, y_off: u32, period: u32 }
@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<uniform> p: P;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = (wg.x + wg.y * GRID_X) * 256u + t;
    if (i < p.n) { x[p.x_off + i] = x[p.x_off + i] + y[p.y_off + i % p.period]; }
}
