"""The official `openai` Python package's Realtime client, in transcription
mode, against `vkwhisper serve`'s /v1/realtime.

jfk.wav is streamed at 24 kHz pcm16 in real time (100 ms appends) with the
server VAD: text arrives as `...input_audio_transcription.delta` events
before each turn's `speech_stopped`, each turn ends with `.completed`, and
the turns' text is the CLI's live transcript (`vkwhisper listen --file`).
Starts nothing: VKW_SERVER_URL names a server with tiny.en (see
test_openai_python.py). Run by scripts/server-e2e.sh.
"""

import array
import asyncio
import base64
import json
import os
import pathlib
import re
import subprocess
import wave

import pytest
from openai import AsyncOpenAI

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "jfk.wav"
URL = os.environ.get("VKW_SERVER_URL", "")
BIN = os.environ.get("VKW_BIN", str(ROOT / "target" / "release" / "vkwhisper"))
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."

if not URL:
    pytest.fail("set VKW_SERVER_URL (e.g. http://127.0.0.1:8000)", pytrace=False)


def words(s):
    return re.sub(r"[^a-z0-9' ]+", " ", s.lower()).split()


def edits(a, b):
    """Word-level Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a):
        cur = [i + 1]
        for j, y in enumerate(b):
            cur.append(min(prev[j] + (x != y), prev[j + 1] + 1, cur[j] + 1))
        prev = cur
    return prev[-1]


def jfk_24k():
    """jfk.wav (16 kHz mono s16) at 24 kHz by linear interpolation, then 1.5 s of silence."""
    with wave.open(str(SAMPLE)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        x = array.array("h", w.readframes(w.getnframes()))
    n = len(x)
    out = array.array("h")
    for i in range(n * 3 // 2):
        p = i * 2 / 3
        j = int(p)
        f = p - j
        a, b = x[j], x[min(j + 1, n - 1)]
        out.append(int(round(a + (b - a) * f)))
    out.extend([0] * 36000)
    return out.tobytes()


def cli_live_text():
    """The CLI's live transcript of jfk.wav (tiny.en, the virtual clock)."""
    o = subprocess.run([BIN, "listen", "--file", str(SAMPLE), "--model", "tiny.en", "--json-events"],
                       check=True, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "NODEVICE_SELECT": "1"})
    return "".join(json.loads(l)["text"] for l in o.stdout.splitlines()
                   if json.loads(l)["type"] == "committed")


async def transcribe_live():
    client = AsyncOpenAI(base_url=URL.rstrip("/") + "/v1", api_key=os.environ.get("VKW_API_KEY", "none"),
                         max_retries=0)
    events = []
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        first = await asyncio.wait_for(conn.recv(), 30)
        assert first.type == "session.created", first
        await conn.session.update(session={
            "type": "transcription",
            "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "tiny.en", "language": "en"},
                "turn_detection": {"type": "server_vad", "threshold": 0.5,
                                   "prefix_padding_ms": 300, "silence_duration_ms": 500},
            }},
        })
        pcm = jfk_24k()

        async def send():
            step = 4800  # 100 ms of 24 kHz s16
            for i in range(0, len(pcm), step):
                await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i:i + step]).decode())
                await asyncio.sleep(0.1)

        sender = asyncio.create_task(send())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 180
        last_event = loop.time()
        while True:
            started = sum(e.type == "input_audio_buffer.speech_started" for e in events)
            done = sum(e.type == "conversation.item.input_audio_transcription.completed" for e in events)
            settled = sender.done() and started and done == started
            # Settled and quiet for a while: the session is over. (The last
            # turn may complete before the sender's last append, so the
            # state is checked every second, not only after an event.)
            if settled and loop.time() - last_event >= 4:
                break
            assert loop.time() < deadline, f"every turn must complete within 180 s: {[e.type for e in events]}"
            try:
                # Cancelling a websockets recv() loses no message.
                ev = await asyncio.wait_for(conn.recv(), 1)
            except asyncio.TimeoutError:
                continue
            assert ev.type != "error", ev
            events.append(ev)
            last_event = loop.time()
        await sender
    return events


def test_realtime_transcription_session():
    events = asyncio.run(transcribe_live())
    kinds = [e.type for e in events]
    assert kinds[0] == "session.updated", kinds
    assert events[0].session.audio.input.format.rate == 24000
    completed = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
    assert completed, kinds
    # Deltas before the turn ends: some delta of an item precedes its speech_stopped.
    early = 0
    for i, e in enumerate(events):
        if e.type == "conversation.item.input_audio_transcription.delta":
            stopped = [j for j, s in enumerate(events)
                       if s.type == "input_audio_buffer.speech_stopped" and s.item_id == e.item_id]
            if stopped and i < stopped[0]:
                early += 1
    assert early >= 1, kinds
    # Each item's deltas add up to its completed transcript.
    for c in completed:
        deltas = "".join(e.delta for e in events
                         if e.type == "conversation.item.input_audio_transcription.delta" and e.item_id == c.item_id)
        assert deltas == c.transcript
        assert c.usage.type == "duration"
    text = " ".join(c.transcript for c in completed)
    # The jfk speech within a few words (live passes depend on timing).
    assert edits(words(JFK), words(text)) <= 3, text
    # The CLI's live transcript of the same file: the same words (passes run
    # at other moments here, so a word may come out differently: at most 2).
    cli = cli_live_text()
    d = edits(words(cli), words(text))
    print(f"realtime: {text!r}\ncli:      {cli!r}\nword edits: {d}")
    assert d <= 2, (text, cli)
