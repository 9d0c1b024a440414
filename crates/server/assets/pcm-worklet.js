// AudioWorklet: the microphone's samples (first channel) as 16-bit PCM, in
// pieces of about 100 ms, posted to the page (which sends them to /v1/stream).
class PcmSender extends AudioWorkletProcessor {
  constructor() {
    super();
    // 100 ms at the context's rate: small enough for low latency, large
    // enough that the socket is not flooded with tiny frames.
    this.size = Math.round(sampleRate / 10);
    this.buf = new Int16Array(this.size);
    this.n = 0;
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      for (let i = 0; i < ch.length; i++) {
        const x = Math.max(-1, Math.min(1, ch[i]));
        this.buf[this.n++] = x < 0 ? x * 32768 : x * 32767;
        if (this.n === this.size) {
          this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
          this.buf = new Int16Array(this.size);
          this.n = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("pcm-sender", PcmSender);
