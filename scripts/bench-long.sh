#!/usr/bin/env bash
# Long-audio memory benchmark (issue 5, docs/BENCHMARKS.md "Long audio"):
# peak RSS of `vkwhisper transcribe` against input length, on synthetic
# inputs built from the shared longform speech file (234.5 s) alternating
# with 30 s of digital silence, cut to each length.
#
# Usage: scripts/bench-long.sh [MINUTES...]        (default: 10 30 120)
# Env:   VKW=path/to/vkwhisper  MODEL=tiny.en  THREADS=2  COMPUTE=float32
#        EXTRA="--batch-size 8"  (extra transcribe flags)
#        KEEP=dir (keep the generated WAVs there; default: a temp dir)
# Each run must stay under 1 GB peak RSS for tiny.en (the check exits 1 otherwise).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
vkw="${VKW:-$repo/target/release/vkwhisper}"
model="${MODEL:-tiny.en}"
threads="${THREADS:-2}"
compute="${COMPUTE:-float32}"
limit_kb=$((1024 * 1024))
speech="$repo/tests/fixtures/data/longform/ljspeech_LJ001_0001-0032.wav"
minutes=("$@")
[ ${#minutes[@]} -eq 0 ] && minutes=(10 30 120)
work="${KEEP:-$(mktemp -d)}"
mkdir -p "$work"
[ -z "${KEEP:-}" ] && trap 'rm -rf "$work"' EXIT
[ -x "$vkw" ] || { echo "build first: cargo build --release (no $vkw)" >&2; exit 2; }

status=0
printf "%-8s %-10s %-10s %-10s %-12s %s\n" minutes audio_s wall_s rtf peak_rss_mb segments
for m in "${minutes[@]}"; do
    wav="$work/long_${m}min.wav"
    if [ ! -f "$wav" ]; then
        python3 - "$speech" "$wav" "$m" <<'PY'
import sys, wave
src, dst, minutes = sys.argv[1], sys.argv[2], float(sys.argv[3])
with wave.open(src, "rb") as w:
    assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
    speech = w.readframes(w.getnframes())
silence = bytes(2 * 16000 * 30)
total = int(minutes * 60 * 16000) * 2
with wave.open(dst, "wb") as out:
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(16000)
    written = 0
    while written < total:
        for block in (speech, silence):
            part = block[: total - written]
            out.writeframes(part)
            written += len(part)
PY
    fi
    log="$work/time_${m}.txt"
    # shellcheck disable=SC2086
    /usr/bin/time -v "$vkw" transcribe "$wav" --model "$model" --threads "$threads" \
        --compute-type "$compute" ${EXTRA:-} > "$work/out_${m}.txt" 2> "$log"
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    audio=$(python3 -c "print(round($m * 60, 1))")
    rtf=$(python3 -c "print(round($wall / ($m * 60), 4))")
    segs=$(grep -c '^\[' "$work/out_${m}.txt" || true)
    printf "%-8s %-10s %-10s %-10s %-12s %s\n" "$m" "$audio" "$wall" "$rtf" "$((rss_kb / 1024))" "$segs"
    if [ "$rss_kb" -ge "$limit_kb" ]; then
        echo "FAIL: ${m} min peaked at $((rss_kb / 1024)) MB (limit 1024 MB)" >&2
        status=1
    fi
done
exit $status
