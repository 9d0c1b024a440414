// Live dictation on the page: the microphone → an AudioWorklet (16-bit PCM,
// 16 kHz where the browser can resample, else its own rate, which the server
// resamples) → the /v1/stream WebSocket. Settled (committed) text is shown
// normally, the tentative tail in grey, with the lag of the newest settled
// word; copy and download (text, SRT) at any time.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const live = { ws: null, ctx: null, stream: null, node: null, text: "", utterances: [], stopping: false };

  // ---- tabs ---------------------------------------------------------------
  function selectTab(mic) {
    $("tab-file").setAttribute("aria-selected", String(!mic));
    $("tab-mic").setAttribute("aria-selected", String(mic));
    $("panel-file").hidden = mic;
    $("panel-mic").hidden = !mic;
    if (mic) $("result").hidden = true;
  }
  $("tab-file").addEventListener("click", () => selectTab(false));
  $("tab-mic").addEventListener("click", () => selectTab(true));

  // The model and language lists mirror the file form's (filled by the page).
  function mirror(from, to) {
    const copy = () => {
      const keep = to.value;
      to.replaceChildren(...[...from.options].map((o) => new Option(o.text, o.value)));
      to.value = [...to.options].some((o) => o.value === keep) && keep ? keep : from.value;
    };
    new MutationObserver(copy).observe(from, { childList: true });
    copy();
  }
  mirror($("model"), $("live-model"));
  mirror($("language"), $("live-language"));

  // ---- display --------------------------------------------------------------
  const box = $("live-text");
  const committedEl = box.querySelector(".committed");
  const tentativeEl = box.querySelector(".tentative");
  function status(t) { $("live-status").textContent = t; }
  function error(t) { const e = $("live-error"); e.textContent = t; e.hidden = !t; }
  function showLag(s) {
    const el = $("lag");
    el.hidden = false;
    el.textContent = "lag " + s.toFixed(1) + " s";
    el.classList.toggle("slow", s > 3.3);
  }
  function render(tentative) {
    committedEl.textContent = live.text;
    tentativeEl.textContent = tentative || "";
    box.scrollTop = box.scrollHeight;
    const any = live.text.trim().length > 0;
    ["live-copy", "live-txt", "live-srt"].forEach((id) => { $(id).disabled = !any; });
  }
  function setRunning(on) {
    const b = $("mic");
    b.textContent = on ? "Stop" : "Start dictation";
    b.setAttribute("aria-pressed", String(on));
    $("live-model").disabled = on;
    $("live-language").disabled = on;
    $("tab-file").disabled = on;
  }

  // ---- the socket ---------------------------------------------------------
  function socketUrl() {
    const u = new URL("v1/stream", location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  }
  function onMessage(ev) {
    let m;
    try { m = JSON.parse(ev.data); } catch (_) { return; }
    if (m.type === "ready") {
      status("Listening… (" + m.model + ")");
    } else if (m.type === "update") {
      for (const w of m.committed) {
        live.text += !live.text || live.text.endsWith("\n") ? w.text.trimStart() : w.text;
      }
      if (m.lag_s !== null && m.lag_s !== undefined) showLag(m.lag_s);
      render(m.tentative);
    } else if (m.type === "utterance") {
      live.utterances.push(m);
      if (live.text && !/\n$/.test(live.text)) live.text += "\n";
      render("");
    } else if (m.type === "final") {
      live.finalText = m.text;
      status("Stopped. " + (live.text.trim() ? "" : "No speech was heard."));
      render("");
    } else if (m.type === "error") {
      const e = m.error || {};
      error("The server said: " + (e.message || "an error") + (e.code ? " (" + e.code + ")" : ""));
    }
  }

  async function start() {
    error("");
    live.text = ""; live.utterances = []; live.finalText = null; live.stopping = false;
    render("");
    $("lag").hidden = true;
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      error("This browser cannot record here (a microphone needs https or localhost, and AudioWorklet).");
      return;
    }
    status("Asking for the microphone…");
    try {
      live.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (e) {
      status("");
      error("No microphone: " + (e && e.message || e) + ". Allow the microphone for this page and try again.");
      return;
    }
    // 16 kHz where the browser resamples the microphone itself; otherwise
    // its own rate, and the server resamples.
    let source;
    try {
      live.ctx = new AudioContext({ sampleRate: 16000 });
      source = live.ctx.createMediaStreamSource(live.stream);
    } catch (_) {
      if (live.ctx) live.ctx.close();
      live.ctx = new AudioContext();
      source = live.ctx.createMediaStreamSource(live.stream);
    }
    await live.ctx.audioWorklet.addModule("pcm-worklet.js");
    live.node = new AudioWorkletNode(live.ctx, "pcm-sender");
    const key = sessionStorage.getItem("vkwhisper.apiKey");
    const protocols = ["vkwhisper.stream"].concat(key ? ["openai-insecure-api-key." + key] : []);
    const ws = new WebSocket(socketUrl(), protocols);
    ws.binaryType = "arraybuffer";
    live.ws = ws;
    ws.onmessage = onMessage;
    ws.onclose = (ev) => {
      if (live.ws === ws && !live.stopping) {
        error("The connection to the server closed" + (ev.reason ? ": " + ev.reason : "") + ".");
      }
      cleanup();
    };
    ws.onopen = () => {
      ws.send(JSON.stringify({
        model: $("live-model").value || undefined,
        language: $("live-language").value || undefined,
        sample_rate: live.ctx.sampleRate,
      }));
      live.node.port.onmessage = (e) => { if (ws.readyState === WebSocket.OPEN) ws.send(e.data); };
      source.connect(live.node);
      setRunning(true);
    };
    status("Connecting…");
  }

  function stop() {
    live.stopping = true;
    status("Finishing the last words…");
    stopAudio();
    if (live.ws && live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify({ type: "finish" }));
    else cleanup();
  }
  function stopAudio() {
    if (live.node) { live.node.port.onmessage = null; live.node.disconnect(); live.node = null; }
    if (live.stream) { live.stream.getTracks().forEach((t) => t.stop()); live.stream = null; }
    if (live.ctx) { live.ctx.close(); live.ctx = null; }
  }
  function cleanup() {
    stopAudio();
    live.ws = null;
    setRunning(false);
  }
  $("mic").addEventListener("click", () => { if (live.ws) stop(); else start(); });

  // ---- copy and download -----------------------------------------------------
  function ts(s) {
    const ms = Math.max(0, Math.round(s * 1000));
    const p = (n, w) => String(n).padStart(w, "0");
    return p(Math.floor(ms / 3600000), 2) + ":" + p(Math.floor(ms / 60000) % 60, 2) + ":" +
      p(Math.floor(ms / 1000) % 60, 2) + "," + p(ms % 1000, 3);
  }
  function save(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = document.createElement("a");
    a.href = url; a.download = name; a.hidden = true;
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
  }
  $("live-copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(live.text.trim()); status("Copied the text."); }
    catch (_) { status("Copying is not allowed here: select the text and copy it."); }
  });
  $("live-txt").addEventListener("click", () => save("dictation.txt", live.text.trim() + "\n", "text/plain;charset=utf-8"));
  $("live-srt").addEventListener("click", () => {
    const srt = live.utterances.map((u, i) => (i + 1) + "\n" + ts(u.start) + " --> " + ts(u.end) + "\n" +
      u.text.replaceAll("-->", "->") + "\n\n").join("");
    save("dictation.srt", srt, "application/x-subrip;charset=utf-8");
  });
})();
