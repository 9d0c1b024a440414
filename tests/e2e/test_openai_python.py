"""The official `openai` Python package against a running `vkwhisper serve`.

Starts nothing: VKW_SERVER_URL names a server with tiny.en and base (e.g.
`vkwhisper serve --model tiny.en --model base`). The reference transcripts
come from the command line on the same model and options (VKW_BIN, default
target/release/vkwhisper), cached in VKW_REF_DIR when set. Run by
scripts/server-e2e.sh.
"""

import json
import os
import pathlib
import subprocess
import tempfile

import openai
import pytest
from openai import OpenAI

# The SDK marks translations deprecated; they are what is being tested.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "jfk.wav"
URL = os.environ.get("VKW_SERVER_URL", "")
BIN = os.environ.get("VKW_BIN", str(ROOT / "target" / "release" / "vkwhisper"))
REF_DIR = os.environ.get("VKW_REF_DIR") or tempfile.mkdtemp(prefix="vkw-ref-")

if not URL:
    pytest.fail("set VKW_SERVER_URL (e.g. http://127.0.0.1:8000)", pytrace=False)


def cli(model, task="transcribe", words=False):
    """The CLI's outputs for jfk.wav: {"json": dict, "srt": str, "txt": str}."""
    out = pathlib.Path(REF_DIR) / f"{model}-{task}-{'words' if words else 'segments'}"
    if not (out / "jfk.json").exists():
        cmd = [BIN, "transcribe", str(SAMPLE), "-f", "json,srt,txt", "-q", "-o", str(out),
               "--model", model, "--task", task]
        if words:
            cmd.append("--word-timestamps")
        subprocess.run(cmd, check=True, timeout=600, env={**os.environ, "NODEVICE_SELECT": "1"})
    return {
        "json": json.loads((out / "jfk.json").read_text()),
        "srt": (out / "jfk.srt").read_text(),
    }


def cli_text(model, task="transcribe"):
    return cli(model, task)["json"]["text"].strip()


@pytest.fixture(scope="module")
def client():
    # No retries: a 5xx must fail the test, not be retried away.
    return OpenAI(base_url=URL.rstrip("/") + "/v1", api_key=os.environ.get("VKW_API_KEY", "none"),
                  max_retries=0, timeout=300)


def audio():
    return open(SAMPLE, "rb")


def test_models(client):
    ids = {m.id for m in client.models.list()}
    assert {"tiny.en", "base", "whisper-1"} <= ids, ids
    m = client.models.retrieve("tiny.en")
    assert (m.id, m.object) == ("tiny.en", "model")
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("no-such-model")
    assert e.value.code == "model_not_found"


def test_json(client):
    with audio() as f:
        r = client.audio.transcriptions.create(model="tiny.en", file=f)
    assert r.text == cli_text("tiny.en")
    assert "ask not what your country can do for you" in r.text
    usage = r.model_dump().get("usage") or {}
    assert usage.get("type") == "duration" and abs(usage["seconds"] - 11.0) < 0.01, usage


def test_verbose_json_words_and_segments(client):
    with audio() as f:
        r = client.audio.transcriptions.create(
            model="tiny.en", file=f, response_format="verbose_json",
            timestamp_granularities=["word", "segment"])
    ref = cli("tiny.en", words=True)["json"]
    assert r.text == ref["text"].strip() == cli_text("tiny.en")
    assert r.language == "english"
    assert abs(r.duration - 11.0) < 0.01
    # Segments: OpenAI's fields, the CLI's times and texts.
    assert [(s.start, s.end, s.text) for s in r.segments] == \
        [(s["start"], s["end"], s["text"]) for s in ref["segments"]]
    for i, s in enumerate(r.segments):
        assert s.id == i
        for k in ("seek", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"):
            assert getattr(s, k) is not None, k
        assert s.tokens and all(isinstance(t, int) for t in s.tokens)
    # Words: the CLI's words and times, in order.
    ref_words = [(w["word"].strip(), w["start"], w["end"]) for s in ref["segments"] for w in s["words"]]
    assert [(w.word, w.start, w.end) for w in r.words] == ref_words
    assert " ".join(w.word for w in r.words) == r.text


def test_srt(client):
    with audio() as f:
        srt = client.audio.transcriptions.create(model="tiny.en", file=f, response_format="srt")
    assert isinstance(srt, str)
    assert srt == cli("tiny.en")["srt"]
    assert srt.startswith("1\n00:00:00,000 --> ")


def test_stream(client):
    with audio() as f:
        events = list(client.audio.transcriptions.create(model="tiny.en", file=f, stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = [e for e in events if e.type == "transcript.text.done"]
    assert deltas, [e.type for e in events]
    assert len(done) == 1 and events[-1] is done[0]
    assert "".join(deltas) == done[0].text == cli_text("tiny.en")


def test_translate_base(client):
    with audio() as f:
        r = client.audio.translations.create(model="base", file=f)
    assert r.text == cli_text("base", "translate")
    assert "country" in r.text


def test_translate_english_only_model_is_400_naming_model(client):
    with audio() as f, pytest.raises(openai.BadRequestError) as e:
        client.audio.translations.create(model="tiny.en", file=f)
    assert e.value.status_code == 400
    assert e.value.param == "model"
    assert "English-only" in e.value.message


def test_unknown_model_is_404(client):
    with audio() as f, pytest.raises(openai.NotFoundError) as e:
        client.audio.transcriptions.create(model="no-such-model", file=f)
    assert e.value.code == "model_not_found" and e.value.param == "model"


def test_extensions_reach_the_server(client):
    # extra_body fields become form fields: a bad beam_size is a 400 naming it.
    with audio() as f, pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="tiny.en", file=f, extra_body={"beam_size": 0})
    assert e.value.param == "beam_size"
