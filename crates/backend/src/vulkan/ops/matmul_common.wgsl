// The many-row matmuls' shared part (`gemm.wgsl`, `coop.wgsl`,
// `coop_tiled.wgsl` take it in place of their `MATMUL_COMMON` line; see
// `gemm::with_common`): the uniform, the bindings (x as 4-vectors of XTYPE,
// W through `wl4`, out as OTYPE), the per-element epilogue and the guarded
// 4-vector loads of x and W.
struct P {
    m: u32, n: u32, k: u32, ldx: u32,
    ldw: u32, ldo: u32, x_off: u32, w_off: u32,
    o_off: u32, b_off: u32, flags: u32, alpha: f32,
    ksplit: u32, splits: u32, p0: u32, p1: u32,
}
const FLAG_BIAS: u32 = 1u;
const FLAG_GELU: u32 = 2u;
const FLAG_ACC: u32 = 4u;
const FLAG_SCALE: u32 = 16u;

@group(0) @binding(0) var<storage, read> x: array<vec4<XTYPE>>;
WEIGHTS(1)
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<OTYPE>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;
@group(0) @binding(6) var<uniform> p: P;

fn epilogue(r: u32, c: u32, acc: f32) {
    var v = acc * p.alpha;
    if ((p.flags & FLAG_SCALE) != 0u) { v = v / scale[c]; }
    if ((p.flags & FLAG_BIAS) != 0u) { v = v + bias[p.b_off + c]; }
    if ((p.flags & FLAG_GELU) != 0u) { v = gelu_erf(v); }
    let i = p.o_off + r * p.ldo + c;
    if ((p.flags & FLAG_ACC) != 0u) { out[i] = OTYPE(f32(out[i]) + v); } else { out[i] = OTYPE(v); }
}

// Four consecutive k of row r of x (zero outside).
fn load_x(r: u32, k: u32) -> vec4<f32> {
    if (r < p.m && k < p.k) { return vec4<f32>(x[(p.x_off + r * p.ldx + k) >> 2u]); }
    return vec4<f32>(0.0);
}

// Four consecutive k of weight row (output column) c (zero outside).
fn load_w(c: u32, k: u32) -> vec4<f32> {
    if (c < p.n && k < p.k) { return wl4((p.w_off + c * p.ldw + k) >> 2u); }
    return vec4<f32>(0.0);
}
