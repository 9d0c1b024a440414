// im2col for the encoder's Conv1D (kernel 3, zero padding 1, spec §4.4):
// cols[t, i·3 + j] = x(frame t·stride + j − 1, channel i), zero outside.
// The weight [out, in, 3] is then the matrix [out, in·3] of a matmul.
// OTYPE: f32, or f16 in the float16 compute mode (the matmul then runs on
// float16 activations, on matrix cores where the adapter has them).
struct P { t_in: u32, c_in: u32, t_out: u32, stride: u32, channel_major: u32, x_off: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> cols: array<OTYPE>;
@group(0) @binding(2) var<uniform> p: P;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let e = (wg.x + wg.y * GRID_X) * 256u + t;
    let kk = p.c_in * 3u;
    if (e >= p.t_out * kk) { return; }
    let row = e / kk;
    let c = e % kk;
    let i = c / 3u;
    let j = c % 3u;
    let src = i32(row * p.stride + j) - 1;
    var v = 0.0;
    if (src >= 0 && u32(src) < p.t_in) {
        let s = u32(src);
        if (p.channel_major != 0u) { v = x[p.x_off + i * p.t_in + s]; } else { v = x[p.x_off + s * p.c_in + i]; }
    }
    cols[e] = OTYPE(v);
}
