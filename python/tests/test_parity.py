"""faster-whisper 1.2.1 and vkwhisper, called the same way, return equal
values: the keyword table of parity_cases.py, compared field by field.

Tolerances are the golden files' (tests/fixtures/golden/README.md): tokens,
text, ids, seeks, temperatures, options and errors exactly; times within
0.01 s; log-probabilities and probabilities within 1e-3 (float32 rounding
differs between two implementations of the same arithmetic). A segment that
faster-whisper sampled at a temperature above 0 cannot be reproduced token
for token: vkwhisper must have fallen back too, and the comparison stops
there.
"""

import math

import pytest

import parity_cases as pc

import vkwhisper

TIME = 0.01
PROB = 1e-3


def _num(v):
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    return v


def close(a, b, tol):
    a, b = _num(a), _num(b)
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and math.isinf(a) or isinstance(b, float) and math.isinf(b):
        return a == b
    return abs(a - b) <= tol


class Diff:
    def __init__(self, case):
        self.case = case
        self.problems = []

    def eq(self, where, fw, vk):
        if fw != vk:
            self.problems.append(f"{where}: faster-whisper {fw!r} != vkwhisper {vk!r}")

    def near(self, where, fw, vk, tol):
        if not close(fw, vk, tol):
            self.problems.append(
                f"{where}: faster-whisper {fw!r} vs vkwhisper {vk!r} (tolerance {tol})"
            )

    def check(self):
        if self.problems:
            shown = "\n  ".join(self.problems[:12])
            more = len(self.problems) - 12
            pytest.fail(
                f"{self.case}: {len(self.problems)} difference(s)\n  {shown}"
                + (f"\n  … {more} more" if more > 0 else ""),
                pytrace=False,
            )


def compare_info(d, fw, vk):
    d.eq("info.language", fw["language"], vk["language"])
    d.eq(
        "type(info.language_probability)",
        fw["language_probability_type"],
        vk["language_probability_type"],
    )
    d.near("info.language_probability", fw["language_probability"], vk["language_probability"], PROB)
    d.near("info.duration", fw["duration"], vk["duration"], 1e-9)
    d.near("info.duration_after_vad", fw["duration_after_vad"], vk["duration_after_vad"], 1e-6)
    fp, vp = fw["all_language_probs"], vk["all_language_probs"]
    if fp is None or vp is None:
        d.eq("info.all_language_probs", fp, vp)
    else:
        d.eq("info.all_language_probs[0] language", fp[0][0], vp[0][0])
        fw_probs = dict(fp)
        for lang, p in vp:
            if lang in fw_probs:
                d.near(f"info.all_language_probs[{lang}]", fw_probs[lang], p, PROB)
    d.eq("info.transcription_options", fw["transcription_options"], vk["transcription_options"])
    d.eq("info.vad_options", fw["vad_options"], vk["vad_options"])


def compare_segments(d, fw, vk):
    for i, (a, b) in enumerate(zip(fw, vk)):
        at = f"segments[{i}]"
        if a["temperature"] and a["temperature"] > 0:
            # Sampled: not reproducible; vkwhisper must have fallen back too.
            if not (b["temperature"] and b["temperature"] > 0):
                d.problems.append(
                    f"{at}: faster-whisper fell back to temperature {a['temperature']}, "
                    f"vkwhisper decoded at {b['temperature']}"
                )
            return
        for key in ("id", "seek", "text", "tokens", "temperature"):
            d.eq(f"{at}.{key}", a[key], b[key])
        for key in ("start", "end"):
            d.near(f"{at}.{key}", a[key], b[key], TIME)
        for key in ("avg_logprob", "no_speech_prob"):
            d.near(f"{at}.{key}", a[key], b[key], PROB)
        d.near(f"{at}.compression_ratio", a["compression_ratio"], b["compression_ratio"], 1e-9)
        if a["words"] is None or b["words"] is None:
            d.eq(f"{at}.words", a["words"], b["words"])
            continue
        d.eq(f"{at} word count", len(a["words"]), len(b["words"]))
        for j, (wa, wb) in enumerate(zip(a["words"], b["words"])):
            d.eq(f"{at}.words[{j}].word", wa["word"], wb["word"])
            d.near(f"{at}.words[{j}].start", wa["start"], wb["start"], TIME)
            d.near(f"{at}.words[{j}].end", wa["end"], wb["end"], TIME)
            d.near(f"{at}.words[{j}].probability", wa["probability"], wb["probability"], PROB)
    d.eq("segment count", len(fw), len(vk))


def compare_records(case_id, fw, vk):
    d = Diff(case_id)
    if "error" in fw or "error" in vk:
        d.eq("error", fw.get("error"), vk.get("error"))
        d.check()
        return
    if "detect" in fw:
        a, b = fw["detect"], vk["detect"]
        d.eq("detect.language", a["language"], b["language"])
        d.near("detect.language_probability", a["language_probability"], b["language_probability"], PROB)
        d.eq("detect.top5 languages", [l for l, _ in a["top5"]][:2], [l for l, _ in b["top5"]][:2])
        for (la, pa), (lb, pb) in zip(a["top5"], b["top5"]):
            if la == lb:
                d.near(f"detect.top5[{la}]", pa, pb, PROB)
        d.check()
        return
    compare_info(d, fw["info"], vk["info"])
    compare_segments(d, fw["segments"], vk["segments"])
    d.check()


def test_table_size():
    # The issue asks for at least 20 keyword combinations.
    assert len(pc.CASES) >= 20
    modes = {c[3] for c in pc.CASES}
    assert modes == {"seq", "batched", "detect"}


@pytest.mark.parametrize("case", pc.CASES, ids=[c[0] for c in pc.CASES])
def test_parity(case, fw_results, models):
    fw = fw_results["cases"].get(case[0])
    if fw is None:
        pytest.fail(f"{case[0]}: not in faster-whisper's results", pytrace=False)
    vk = pc.jsonable(pc.run_case(vkwhisper, models, case))
    compare_records(case[0], fw, vk)
