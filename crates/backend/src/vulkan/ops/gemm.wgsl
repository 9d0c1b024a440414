// Many-row matmul on SIMT cores: out[m, n] = epi(alpha · x[m, k] · W[n, k]ᵀ).
// x is read as 4-vectors of XTYPE (f32, or f16 activations in the float16
// mode), W through `wl4` (f32, f16 or int8 with row scales), out is OTYPE;
// operands are staged in workgroup memory as STYPE (f16 when both operands
// are 16-bit or int8, which loses nothing; f32 otherwise) and accumulated
// in f32. Requires k, the row strides and the offsets to be multiples of 4.
//   `tile8`:  128×128 tiles, 16×16 invocations computing 8×8 outputs each
//             from 16-deep slices; the next slice's global loads are issued
//             before the current slice is multiplied (register double
//             buffering), one barrier pair per slice.
//   `skinny`: the small-M product (9–64 rows: batched decoding, prompt
//             pre-pass): one 64-row tile holds every row, so each weight is
//             read by one workgroup; the inner dimension is split over
//             grid.z (`splits` ranges of `ksplit`) so narrow outputs still
//             fill the GPU, partial sums going to `part`.
//   `reduce`: adds the split partials in order and applies the epilogue.
MATMUL_COMMON

fn store4(r: u32, c: u32, v: vec4<f32>) {
    if (r >= p.m) { return; }
    if (c < p.n) { epilogue(r, c, v.x); }
    if (c + 1u < p.n) { epilogue(r, c + 1u, v.y); }
    if (c + 2u < p.n) { epilogue(r, c + 2u, v.z); }
    if (c + 3u < p.n) { epilogue(r, c + 3u, v.w); }
}

var<workgroup> as8: array<vec4<STYPE>, 512>; // [k of the slice][row / 4], 16 × 32
var<workgroup> bs8: array<vec4<STYPE>, 512>; // [k of the slice][col / 4]

// Slice element e (of 512 4-vectors: 128 rows × 4 k-quads) into [k][row].
fn stage8(e: u32, xv: vec4<f32>, wv: vec4<f32>) {
    let r = e >> 2u;
    let kq = (e & 3u) * 4u;
    let i = r >> 2u;
    let j = r & 3u;
    as8[kq * 32u + i][j] = STYPE(xv.x);
    as8[(kq + 1u) * 32u + i][j] = STYPE(xv.y);
    as8[(kq + 2u) * 32u + i][j] = STYPE(xv.z);
    as8[(kq + 3u) * 32u + i][j] = STYPE(xv.w);
    bs8[kq * 32u + i][j] = STYPE(wv.x);
    bs8[(kq + 1u) * 32u + i][j] = STYPE(wv.y);
    bs8[(kq + 2u) * 32u + i][j] = STYPE(wv.z);
    bs8[(kq + 3u) * 32u + i][j] = STYPE(wv.w);
}

@compute @workgroup_size(16, 16)
fn tile8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * 128u;
    let col0 = wg.x * 128u;
    let tid = lid.y * 16u + lid.x;
    let e0 = tid;
    let e1 = tid + 256u;
    // Rows ty·4 .. +4 and 64 + ty·4 .. +4; columns likewise with tx.
    var c00 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0);
    var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0);
    var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0);
    var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0);
    var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0);
    var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0);
    var c71 = vec4<f32>(0.0);
    var x0 = load_x(row0 + (e0 >> 2u), (e0 & 3u) * 4u);
    var x1 = load_x(row0 + (e1 >> 2u), (e1 & 3u) * 4u);
    var w0 = load_w(col0 + (e0 >> 2u), (e0 & 3u) * 4u);
    var w1 = load_w(col0 + (e1 >> 2u), (e1 & 3u) * 4u);
    for (var k0 = 0u; k0 < p.k; k0 = k0 + 16u) {
        stage8(e0, x0, w0);
        stage8(e1, x1, w1);
        workgroupBarrier();
        let kn = k0 + 16u;
        if (kn < p.k) {
            x0 = load_x(row0 + (e0 >> 2u), kn + (e0 & 3u) * 4u);
            x1 = load_x(row0 + (e1 >> 2u), kn + (e1 & 3u) * 4u);
            w0 = load_w(col0 + (e0 >> 2u), kn + (e0 & 3u) * 4u);
            w1 = load_w(col0 + (e1 >> 2u), kn + (e1 & 3u) * 4u);
        }
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let al = vec4<f32>(as8[kk * 32u + lid.y]);
            let ah = vec4<f32>(as8[kk * 32u + 16u + lid.y]);
            let bl = vec4<f32>(bs8[kk * 32u + lid.x]);
            let bh = vec4<f32>(bs8[kk * 32u + 16u + lid.x]);
            c00 = fma(vec4<f32>(al.x), bl, c00); c01 = fma(vec4<f32>(al.x), bh, c01);
            c10 = fma(vec4<f32>(al.y), bl, c10); c11 = fma(vec4<f32>(al.y), bh, c11);
            c20 = fma(vec4<f32>(al.z), bl, c20); c21 = fma(vec4<f32>(al.z), bh, c21);
            c30 = fma(vec4<f32>(al.w), bl, c30); c31 = fma(vec4<f32>(al.w), bh, c31);
            c40 = fma(vec4<f32>(ah.x), bl, c40); c41 = fma(vec4<f32>(ah.x), bh, c41);
            c50 = fma(vec4<f32>(ah.y), bl, c50); c51 = fma(vec4<f32>(ah.y), bh, c51);
            c60 = fma(vec4<f32>(ah.z), bl, c60); c61 = fma(vec4<f32>(ah.z), bh, c61);
            c70 = fma(vec4<f32>(ah.w), bl, c70); c71 = fma(vec4<f32>(ah.w), bh, c71);
        }
        workgroupBarrier();
    }
    let r0 = row0 + lid.y * 4u;
    let c0 = col0 + lid.x * 4u;
    store4(r0, c0, c00); store4(r0, c0 + 64u, c01);
    store4(r0 + 1u, c0, c10); store4(r0 + 1u, c0 + 64u, c11);
    store4(r0 + 2u, c0, c20); store4(r0 + 2u, c0 + 64u, c21);
    store4(r0 + 3u, c0, c30); store4(r0 + 3u, c0 + 64u, c31);
    store4(r0 + 64u, c0, c40); store4(r0 + 64u, c0 + 64u, c41);
    store4(r0 + 65u, c0, c50); store4(r0 + 65u, c0 + 64u, c51);
    store4(r0 + 66u, c0, c60); store4(r0 + 66u, c0 + 64u, c61);
    store4(r0 + 67u, c0, c70); store4(r0 + 67u, c0 + 64u, c71);
}

var<workgroup> xs: array<vec4<STYPE>, 256>; // [k of the slice][row / 4], 16 × 16
var<workgroup> ws: array<vec4<STYPE>, 256>; // [k of the slice][col / 4]

@compute @workgroup_size(16, 16)
fn skinny(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let col0 = wg.x * 64u;
    let z = wg.z;
    let tid = lid.y * 16u + lid.x;
    let r = tid >> 2u;
    let kq = (tid & 3u) * 4u;
    let kb = z * p.ksplit;
    let ke = min(p.k, kb + p.ksplit);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = kb; k0 < ke; k0 = k0 + 16u) {
        var xv = vec4<f32>(0.0);
        var wv = vec4<f32>(0.0);
        if (k0 + kq < ke) {
            xv = load_x(r, k0 + kq);
            wv = load_w(col0 + r, k0 + kq);
        }
        let i = r >> 2u;
        let j = r & 3u;
        xs[kq * 16u + i][j] = STYPE(xv.x);
        xs[(kq + 1u) * 16u + i][j] = STYPE(xv.y);
        xs[(kq + 2u) * 16u + i][j] = STYPE(xv.z);
        xs[(kq + 3u) * 16u + i][j] = STYPE(xv.w);
        ws[kq * 16u + i][j] = STYPE(wv.x);
        ws[(kq + 1u) * 16u + i][j] = STYPE(wv.y);
        ws[(kq + 2u) * 16u + i][j] = STYPE(wv.z);
        ws[(kq + 3u) * 16u + i][j] = STYPE(wv.w);
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let a = vec4<f32>(xs[kk * 16u + lid.y]);
            let b = vec4<f32>(ws[kk * 16u + lid.x]);
            acc0 = fma(vec4<f32>(a.x), b, acc0);
            acc1 = fma(vec4<f32>(a.y), b, acc1);
            acc2 = fma(vec4<f32>(a.z), b, acc2);
            acc3 = fma(vec4<f32>(a.w), b, acc3);
        }
        workgroupBarrier();
    }
    let r0 = lid.y * 4u;
    let c0 = col0 + lid.x * 4u;
    if (p.splits == 1u) {
        store4(r0, c0, acc0);
        store4(r0 + 1u, c0, acc1);
        store4(r0 + 2u, c0, acc2);
        store4(r0 + 3u, c0, acc3);
    } else {
        part4(z, r0, c0, acc0);
        part4(z, r0 + 1u, c0, acc1);
        part4(z, r0 + 2u, c0, acc2);
        part4(z, r0 + 3u, c0, acc3);
    }
}

fn part4(z: u32, r: u32, c: u32, v: vec4<f32>) {
    if (r >= p.m) { return; }
    let b = (z * p.m + r) * p.n + c;
    if (c < p.n) { part[b] = v.x; }
    if (c + 1u < p.n) { part[b + 1u] = v.y; }
    if (c + 2u < p.n) { part[b + 2u] = v.z; }
    if (c + 3u < p.n) { part[b + 3u] = v.w; }
}

@compute @workgroup_size(256)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = (wg.x + wg.y * GRID_X) * 256u + t;
    if (i >= p.m * p.n) { return; }
    var s = 0.0;
    for (var z = 0u; z < p.splits; z = z + 1u) { s = s + part[z * p.m * p.n + i]; }
    epilogue(i / p.n, i % p.n, s);
}
