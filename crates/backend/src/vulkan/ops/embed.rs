//! Embedding gather with the decoder's learned positions (`embed.wgsl`).

use super::{check_range, kernel, u, with_wtype, WType};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("embed.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    d: u32,
    t: u32,
    base: u32,
    use_scale: u32,
    pad: [u32; 3],
}

/// `x[r] = emb[tok[r]] + pos[base + r % t]` for `rows` token ids in `tok`
/// (already checked against the vocabulary by the caller); `emb` is the
/// table, its type and, for int8, its row scales.
#[allow(clippy::too_many_arguments)]
pub fn record(
    gpu: &Gpu,
    rec: &mut Recorder,
    tok: &Buf,
    emb: (&Buf, WType, Option<&Buf>),
    pos: &Buf,
    rows: usize,
    t: usize,
    base: usize,
    d: usize,
    x: &Buf,
) -> Result<(), BackendError> {
    if t == 0 || !rows.is_multiple_of(t) {
        return Err(BackendError::Shape(format!(
            "embed: {rows} rows of {t} tokens"
        )));
    }
    check_range("embed tokens", 0, rows, 4, tok.bytes)?;
    check_range("embed positions", (base + t - 1) * d, d, 4, pos.bytes)?;
    check_range("embed output", 0, rows * d, 4, x.bytes)?;
    let p = Params {
        rows: u("rows", rows)?,
        d: u("width", d)?,
        t: u("tokens", t)?,
        base: u("position", base)?,
        use_scale: u32::from(emb.2.is_some()),
        pad: [0; 3],
    };
    if (emb.1 == WType::I8) != emb.2.is_some() {
        return Err(BackendError::Shape(
            "embed: int8 tables need their row scales (and only they)".into(),
        ));
    }
    let wt = emb.1;
    let k = kernel(
        gpu,
        "embed",
        wt.name(),
        || with_wtype(SRC, wt),
        "main",
        &[
            Access::Read,
            Access::Read,
            Access::Read,
            Access::Read,
            Access::Write,
        ],
    )?;
    rec.dispatch(
        &k,
        &[tok, emb.0, pos, emb.2.unwrap_or(pos), x],
        bytemuck::bytes_of(&p),
        Gpu::grid(rows * d, 256),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::ops::testutil::{gpu, rand_vec, upload_weight};

    #[test]
    fn gathers_rows_and_adds_positions() {
        let Some(g) = gpu() else { return };
        for wt in [WType::F32, WType::F16] {
            if wt == WType::F16 && !g.f16 {
                continue;
            }
            let (v, d, n_pos) = (53, 29, 17);
            let (eb, e) = upload_weight(&g, &rand_vec(v * d, 61), wt);
            let pos = rand_vec(n_pos * d, 62);
            let tokens: [u32; 6] = [3, 52, 0, 7, 7, 41];
            let (t, base) = (3, 5);
            let tb = g.upload(bytemuck::cast_slice(&tokens), "tok").unwrap();
            let pb = g.upload_f32(&pos, "pos").unwrap();
            let xb = g.alloc((tokens.len() * d * 4) as u64, "x").unwrap();
            let mut rec = g.recorder();
            record(
                &g,
                &mut rec,
                &tb,
                (&eb, wt, None),
                &pb,
                tokens.len(),
                t,
                base,
                d,
                &xb,
            )
            .unwrap();
            g.submit(rec).unwrap();
            let got = g.read(&xb, 0, tokens.len() * d).unwrap();
            for (r, &tk) in tokens.iter().enumerate() {
                for c in 0..d {
                    let want = e[tk as usize * d + c] + pos[(base + r % t) * d + c];
                    assert_eq!(got[r * d + c], want, "{wt:?} row {r} col {c}");
                }
            }
        }
    }
}
