#!/usr/bin/env python3
"""Word error rate (WER) with a small, documented text normalisation.

Standard library only (Python 3.11+). Used by scripts/bench.py; also usable
on its own:

    python3 scripts/wer.py "reference text" "hypothesis text"
    python3 scripts/wer.py --files REF.txt HYP.txt

Normalisation (applied identically to reference and hypothesis):

1. Unicode NFKC.
2. Lowercase (str.casefold()).
3. Apostrophes (' and the typographic variants) are deleted, so
   "don't" -> "dont" and "Peter's" -> "peters".
4. Every other character that is not a letter, digit or whitespace
   (Unicode categories L*, N*, combining marks M* are kept) becomes a space:
   "forty-two" -> "forty two", "i.e." -> "i e", "$5" -> "5".
5. Whitespace is collapsed; the text is split on it into words.

There is deliberately NO number or spelling normalisation (Whisper writes
"1455" where a reference says "fourteen fifty-five"); such differences count
as errors for every engine alike.

WER = (substitutions + deletions + insertions) / reference words, from a
word-level Levenshtein alignment (all three edit costs 1). For a corpus, add
the edit counts and reference word counts of all utterances before dividing
(pooled WER), rather than averaging per-utterance WERs.
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from dataclasses import dataclass

_APOSTROPHES = {"'", "\u2019", "\u2018", "\u02bc", "\u0060", "\u00b4"}


def normalize(text: str) -> list[str]:
    """Return the normalised word list of `text` (see module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out = []
    for ch in text:
        if ch in _APOSTROPHES:
            continue
        cat = unicodedata.category(ch)
        if cat[0] in ("L", "N", "M") or ch.isspace():
            out.append(ch)
        else:
            out.append(" ")
    return "".join(out).split()


@dataclass
class WerCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_words: int = 0
    hyp_words: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float | None:
        if self.ref_words == 0:
            return None if self.hyp_words == 0 else float("inf")
        return self.errors / self.ref_words

    def __add__(self, other: "WerCounts") -> "WerCounts":
        return WerCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.ref_words + other.ref_words,
            self.hyp_words + other.hyp_words,
        )

    def as_dict(self) -> dict:
        return {
            "wer": self.wer,
            "errors": self.errors,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "ref_words": self.ref_words,
            "hyp_words": self.hyp_words,
        }


def align_counts(ref: list[str], hyp: list[str]) -> WerCounts:
    """Word-level Levenshtein distance, split into S/D/I.

    Among minimum-cost alignments, ties are broken deterministically
    (diagonal, then deletion, then insertion); the total is always the
    true edit distance.
    """
    n, m = len(ref), len(hyp)
    # cost[j], plus (S, D, I) triples carried along to report the breakdown.
    prev = [(j, 0, 0, j) for j in range(m + 1)]  # (cost, S, D, I)
    for i in range(1, n + 1):
        cur = [(i, 0, i, 0)] + [None] * m
        r = ref[i - 1]
        for j in range(1, m + 1):
            c, s, d, ins = prev[j - 1]
            if r == hyp[j - 1]:
                best = (c, s, d, ins)
            else:
                best = (c + 1, s + 1, d, ins)
            c, s, d, ins = prev[j]  # delete ref word
            if c + 1 < best[0]:
                best = (c + 1, s, d + 1, ins)
            c, s, d, ins = cur[j - 1]  # insert hyp word
            if c + 1 < best[0]:
                best = (c + 1, s, d, ins + 1)
            cur[j] = best
        prev = cur
    _, s, d, ins = prev[m]
    return WerCounts(s, d, ins, n, m)


def wer_counts(reference: str, hypothesis: str) -> WerCounts:
    return align_counts(normalize(reference), normalize(hypothesis))


def wer(reference: str, hypothesis: str) -> float | None:
    return wer_counts(reference, hypothesis).wer


def _self_test() -> None:
    assert normalize("Hello,  World! It's  forty-two.") == ["hello", "world", "its", "forty", "two"]
    assert normalize("\u201cMissal type,\u201d i.e.") == ["missal", "type", "i", "e"]
    c = wer_counts("a b c d", "a x c d e")
    assert (c.substitutions, c.deletions, c.insertions, c.ref_words) == (1, 0, 1, 4), c
    c = wer_counts("a b c d", "a d")
    assert (c.errors, c.deletions) == (2, 2), c
    assert wer("The cat.", "the cat") == 0.0
    assert wer("", "") is None
    assert wer("one two three", "") == 1.0
    assert wer_counts("x", "y z w").errors == 3
    total = wer_counts("a b", "a c") + wer_counts("c d e f", "c d e f")
    assert total.wer == 1 / 6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reference", nargs="?")
    ap.add_argument("hypothesis", nargs="?")
    ap.add_argument("--files", action="store_true", help="arguments are file paths")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        _self_test()
        print("wer.py self-test ok")
        return 0
    if a.reference is None or a.hypothesis is None:
        ap.error("need REFERENCE and HYPOTHESIS")
    ref, hyp = a.reference, a.hypothesis
    if a.files:
        with open(ref, encoding="utf-8") as f:
            ref = f.read()
        with open(hyp, encoding="utf-8") as f:
            hyp = f.read()
    c = wer_counts(ref, hyp)
    w = c.wer
    print(
        f"WER {'n/a' if w is None else f'{100 * w:.2f}%'}  "
        f"(S={c.substitutions} D={c.deletions} I={c.insertions} / N={c.ref_words})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
