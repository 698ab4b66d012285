// The live page: the microphone to the controller over a WebSocket, while the page
// shows the level, the time on air and how many speakers play it. The controller sends
// a chime first; the speaker is asked to wait for it before speaking.
"use strict";

const CHUNK_MS = 250;

function liveTargets(form) {
  const reach = form.querySelector('input[name="reach"]:checked').value;
  if (reach === "zones") {
    const zones = [...form.querySelectorAll('input[name="zone"]:checked')].map((z) => z.value);
    return zones.length ? { zones } : null;
  }
  if (reach === "nodes") {
    const nodes = [...form.querySelectorAll('input[name="node"]:checked')].map((n) => n.value);
    return nodes.length ? { nodes } : null;
  }
  return { all: true };
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

class LiveSession {
  constructor(ui) { this.ui = ui; this.session = null; }

  async start(form) {
    const targets = liveTargets(form);
    if (!targets) throw new Error("Hãy chọn ít nhất một thôn/khu hoặc cụm loa.");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (e) {
      throw new Error("Không dùng được micrô: hãy cho phép trình duyệt dùng micrô rồi thử lại.");
    }
    this.stream = stream;
    this.session = await api("POST", "/api/live", { targets, title: form.title.value.trim() });
    this.startedAt = Date.now();
    this.meter(stream);
    await this.connect(stream);
    this.ui.state(`Đang phát hồi chuông… (${Math.round(this.session.chime_s)} giây)`);
    this.chimeTimer = setTimeout(() => this.ui.state("Đang phát trực tiếp — mời nói"),
                                 this.session.chime_s * 1000);
    this.poller = setInterval(() => this.poll(), 1000);
  }

  connect(stream) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${this.session.audio}`);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    return new Promise((resolve, reject) => {
      socket.onmessage = () => {
        const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"]
          .find((t) => MediaRecorder.isTypeSupported(t));
        this.recorder = new MediaRecorder(stream, { mimeType: type, audioBitsPerSecond: 32000 });
        this.recorder.ondataavailable = async (event) => {
          if (event.data.size && socket.readyState === WebSocket.OPEN) {
            socket.send(await event.data.arrayBuffer());
          }
        };
        this.recorder.start(CHUNK_MS);
        socket.onmessage = null;
        resolve();
      };
      socket.onerror = () => reject(new Error("Mất kết nối tới máy chủ."));
      socket.onclose = () => { if (this.session) this.ended("Buổi phát đã kết thúc."); };
    });
  }

  meter(stream) {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    this.context = context;
    const tick = () => {
      if (!this.session) return;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      this.ui.level(Math.min(1, Math.sqrt(sum / samples.length) * 4));
      this.ui.elapsed((Date.now() - this.startedAt) / 1000);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  async poll() {
    if (!this.session) return;
    try {
      const now = await api("GET", `/api/live/${this.session.id}`);
      this.ui.nodes(now.playing, now.nodes);
      if (now.ended_at) this.ended("Buổi phát đã kết thúc.");
    } catch (e) { /* the next poll tries again */ }
  }

  async stop() {
    const session = this.session;
    if (!session) return;
    this.cleanup();
    await api("POST", `/api/live/${session.id}/stop`);
    this.ui.state("Đã dừng phát.");
  }

  ended(message) {
    if (!this.session) return;
    this.cleanup();
    this.ui.state(message);
  }

  cleanup() {
    this.session = null;
    clearInterval(this.poller);
    clearTimeout(this.chimeTimer);
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
    if (this.socket) this.socket.close();
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.context) this.context.close();
    this.ui.level(0);
    this.ui.off();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("live-form");
  if (!form) return;
  const button = document.getElementById("live-toggle");
  const error = document.getElementById("live-error");
  const ui = {
    state: (text) => { document.getElementById("live-state").textContent = text; },
    level: (value) => { document.getElementById("live-level").value = value; },
    elapsed: (s) => { document.getElementById("live-elapsed").textContent = clock(s); },
    nodes: (playing, all) => { document.getElementById("live-nodes").textContent = `${playing}/${all}`; },
    off: () => { button.textContent = "Bắt đầu phát"; button.classList.remove("on"); },
  };
  const live = new LiveSession(ui);
  form.addEventListener("change", () => {
    const reach = form.querySelector('input[name="reach"]:checked').value;
    form.querySelectorAll("[data-reach]").forEach((el) => { el.hidden = el.dataset.reach !== reach; });
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      if (live.session) {
        await live.stop();
      } else {
        ui.state("Đang kết nối…");
        await live.start(form);
        button.textContent = "Dừng phát";
        button.classList.add("on");
      }
    } catch (e) {
      live.cleanup();
      ui.state("Sẵn sàng");
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
});
