// gather: dst[l][kv][i][pos][:] = src[l][kv][origin[i]][pos][:] for
// pos < len — beam reordering (origin = chosen parents) and cache growth
// (origin = identity, larger cap) in one kernel.
struct G { layers: u32, seqs_dst: u32, seqs_src: u32, cap_src: u32, cap_dst: u32, len: u32, d: u32, p0: u32 }
@group(0) @binding(0) var<storage, read> origin: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> g: G;

@compute @workgroup_size(256)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let e = (wg.x + wg.y * GRID_X) * 256u + t;
    let per_seq = g.len * g.d;
    if (e >= g.layers * 2u * g.seqs_dst * per_seq) { return; }
    let lk = e / (g.seqs_dst * per_seq);
    let rest = e % (g.seqs_dst * per_seq);
    let i = rest / per_seq;
    let within = rest % per_seq;
    let s = origin[i];
    dst[(lk * g.seqs_dst + i) * g.cap_dst * g.d + within] = src[(lk * g.seqs_src + s) * g.cap_src * g.d + within];
}
