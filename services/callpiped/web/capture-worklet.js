// Microphone capture for the talk page: mixes the input to mono, resamples
// it from the context's rate to 16 kHz (linear interpolation, carried
// across render quanta) and posts 20 ms frames of S16LE samples, the
// format GET /sonic takes.
"use strict";

const TARGET_RATE = 16000;
const FRAME_SAMPLES = 320;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE;
    this.pos = 0; // next output position, in input samples of this block
    this.prev = 0; // last input sample of the previous block
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.fill = 0;
    this.stopped = false;
    this.port.onmessage = (ev) => {
      if (ev.data === "stop") {
        this.stopped = true;
      }
    };
  }

  mono(input) {
    if (input.length === 1) {
      return input[0];
    }
    const out = new Float32Array(input[0].length);
    for (const ch of input) {
      for (let i = 0; i < out.length; i++) {
        out[i] += ch[i] / input.length;
      }
    }
    return out;
  }

  push(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.fill === FRAME_SAMPLES) {
      const buf = this.frame.buffer;
      this.port.postMessage(buf, [buf]);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.fill = 0;
    }
  }

  process(inputs) {
    if (this.stopped) {
      return false;
    }
    const input = inputs[0];
    if (!input || input.length === 0) {
      return true;
    }
    const x = this.mono(input);
    const last = x.length - 1;
    while (this.pos <= last) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i < 0 ? this.prev : x[i];
      const b = i + 1 <= last ? x[i + 1] : a;
      this.push(a + (b - a) * frac);
      this.pos += this.step;
    }
    this.pos -= x.length;
    this.prev = x[last];
    return true;
  }
}

registerProcessor("callpipe-capture", CaptureProcessor);
