// The talk page: microphone -> capture-worklet.js (16 kHz S16LE frames) ->
// WebSocket GET /sonic; binary frames back are the bot's 16 kHz speech,
// queued for gapless playback; text frames are JSON events. The counters
// in the page (frames sent and received) let tests follow a session.
// #autostart=1 in the address starts at once.
"use strict";

(() => {
  const REPLY_RATE = 16000;
  const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  let ws = null;
  let ctx = null;
  let stream = null;
  let node = null;
  let playAt = 0;
  let playing = [];
  const count = { sent: 0, received: 0, bytes: 0, bargeIns: 0 };

  function setState(s) {
    callpipe.text("state", s);
  }

  function showCounts() {
    callpipe.text("frames-sent", count.sent);
    callpipe.text("frames-received", count.received);
    callpipe.text("bytes-received", count.bytes);
    callpipe.text("barge-ins", count.bargeIns);
  }

  function notice(msg) {
    const p = document.getElementById("notice");
    p.textContent = msg;
    p.hidden = false;
  }

  // Browsers cannot set headers on a WebSocket: the token travels as a
  // subprotocol when it can be one, else in the query.
  function socketTarget() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = scheme + "//" + location.host + "/sonic";
    const protocols = ["callpipe.v1"];
    const token = callpipe.token();
    if (token && TOKEN_CHARS.test(token)) {
      protocols.push("bearer." + token);
    } else if (token) {
      url += "?token=" + encodeURIComponent(token);
    }
    return { url, protocols };
  }

  function addTranscript(ev) {
    const ol = document.getElementById("transcript");
    const last = ol.lastElementChild;
    let li;
    // A FINAL replaces the SPECULATIVE text of the same turn.
    if (last && last.dataset.role === ev.role &&
        last.dataset.stage === "SPECULATIVE") {
      li = last;
    } else {
      li = document.createElement("li");
      ol.appendChild(li);
    }
    li.dataset.role = ev.role;
    li.dataset.stage = ev.stage;
    li.className = ev.stage === "SPECULATIVE" ? "speculative" : "";
    li.textContent = ev.text;
  }

  function stopPlayback() {
    for (const src of playing) {
      src.stop();
    }
    playing = [];
    playAt = 0;
  }

  function play(data) {
    count.received++;
    count.bytes += data.byteLength;
    showCounts();
    const pcm = new Int16Array(data);
    if (pcm.length === 0) {
      return;
    }
    const buf = ctx.createBuffer(1, pcm.length, REPLY_RATE);
    const out = buf.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) {
      out[i] = pcm[i] / 32768;
    }
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(ctx.destination);
    playAt = Math.max(playAt, ctx.currentTime + 0.05);
    src.start(playAt);
    playAt += buf.duration;
    playing.push(src);
    src.onended = () => {
      playing = playing.filter((s) => s !== src);
    };
  }

  function onEvent(ev) {
    switch (ev.type) {
      case "session":
        if (ev.sessionId) {
          callpipe.text("session-id", ev.sessionId);
        }
        setState(ev.event + (ev.reason ? " (" + ev.reason + ")" : ""));
        break;
      case "transcript":
        addTranscript(ev);
        break;
      case "bargeIn":
        count.bargeIns++;
        showCounts();
        stopPlayback();
        break;
      case "transferToAgent":
        notice("The bot is transferring you to an agent" +
          (ev.reason ? ": " + ev.reason : ""));
        break;
      case "endCall":
        notice("The bot ended the conversation" +
          (ev.reason ? ": " + ev.reason : ""));
        break;
      case "toolUse":
        notice("Tool: " + ev.toolName);
        break;
      case "error":
        callpipe.showError(ev.code + ": " + ev.message);
        break;
    }
  }

  function stopCapture() {
    if (node) {
      node.port.postMessage("stop");
      node.disconnect();
      node = null;
    }
    if (stream) {
      for (const t of stream.getTracks()) {
        t.stop();
      }
      stream = null;
    }
    document.getElementById("stop").disabled = true;
  }

  async function start() {
    callpipe.showError(null);
    document.getElementById("start").disabled = true;
    try {
      ctx = ctx || new AudioContext({ latencyHint: "interactive" });
      await ctx.resume();
      await ctx.audioWorklet.addModule("/static/capture-worklet.js");
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true,
          noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      callpipe.showError(err);
      stopCapture();
      document.getElementById("start").disabled = false;
      return;
    }
    const target = socketTarget();
    const socket = new WebSocket(target.url, target.protocols);
    ws = socket;
    socket.binaryType = "arraybuffer";
    setState("connecting");
    socket.onopen = () => {
      node = new AudioWorkletNode(ctx, "callpipe-capture");
      node.port.onmessage = (ev) => {
        if (socket.readyState === WebSocket.OPEN) {
          socket.send(ev.data);
          count.sent++;
          showCounts();
        }
      };
      ctx.createMediaStreamSource(stream).connect(node);
      node.connect(ctx.destination); // keeps the worklet pulled; silent
      document.getElementById("stop").disabled = false;
    };
    socket.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        onEvent(JSON.parse(ev.data));
      } else {
        play(ev.data);
      }
    };
    socket.onclose = (ev) => {
      callpipe.text("close-code", ev.code + (ev.reason ? " " + ev.reason : ""));
      setState("closed");
      stopCapture();
      ws = null;
      document.getElementById("start").disabled = false;
    };
  }

  // Ends the conversation but keeps the socket for the last events; the
  // server closes it when the session has ended.
  function hangUp() {
    stopCapture();
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "end" }));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("start").addEventListener("click", start);
    document.getElementById("stop").addEventListener("click", hangUp);
    if (callpipe.hash.get("autostart") === "1") {
      start();
    }
  });
})();
