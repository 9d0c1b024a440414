// The decoder's self-attention cache: one buffer [layers][2][seqs][cap][d]
// (keys, then values, per layer).

// append: copy the K and V columns of one layer's fused QKV projection
// [seqs·t, 3d] into positions base .. base + t of every sequence (values
// `vo` elements after the keys).
struct A { seqs: u32, t: u32, d: u32, cap: u32, base: u32, layer_off: u32, vo: u32, p1: u32 }
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> cache: array<f32>;
@group(0) @binding(2) var<uniform> a: A;

@compute @workgroup_size(256)
fn append(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let e = (wg.x + wg.y * GRID_X) * 256u + t;
    if (e >= a.seqs * a.t * a.d) { return; }
    let r = e / a.d;
    let c = e % a.d;
    let s = r / a.t;
    let i = r % a.t;
    let dst = a.layer_off + (s * a.cap + a.base + i) * a.d + c;
    cache[dst] = qkv[r * 3u * a.d + a.d + c];
    cache[dst + a.vo] = qkv[r * 3u * a.d + 2u * a.d + c];
}
