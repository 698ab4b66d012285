// Ring and notify: a short chime (Web Audio, no sound file to fetch) and a browser
// notification, for a new camera alert or a node that stays offline. Loaded on the
// officer's and admin's pages; the alert desk rings from its own stream (alerts.js), the
// other pages open the same stream here. Nodes are watched on every page it is loaded on.
"use strict";

const LoaxaNotify = {
  rang: 0,
  shown: 0,
  audio: null,
  supported() { return "Notification" in window; },
  granted() { return this.supported() && Notification.permission === "granted"; },
  unlockAudio() {
    try {
      if (!this.audio) this.audio = new (window.AudioContext || window.webkitAudioContext)();
      if (this.audio.state === "suspended") this.audio.resume();
    } catch (e) { this.audio = null; }
  },
  ring() {
    this.unlockAudio();
    if (this.audio) {
      const now = this.audio.currentTime;
      [[880, 0], [660, 0.18]].forEach(([hz, at]) => {
        const osc = this.audio.createOscillator();
        const gain = this.audio.createGain();
        osc.frequency.value = hz;
        gain.gain.setValueAtTime(0.25, now + at);
        gain.gain.exponentialRampToValueAtTime(0.001, now + at + 0.16);
        osc.connect(gain).connect(this.audio.destination);
        osc.start(now + at);
        osc.stop(now + at + 0.17);
      });
    }
    this.rang += 1;
    document.body.dataset.rang = String(this.rang);
  },
  notify(title, body, tag) {
    this.ring();
    if (this.granted()) {
      try { new Notification(title, { body, tag, lang: "vi" }); this.shown += 1; } catch (e) { /* no notifications on this device */ }
    }
    document.body.dataset.notified = String(this.shown);
  },
  async enable() {
    this.unlockAudio();
    if (this.supported() && Notification.permission === "default") await Notification.requestPermission();
    this.showState();
  },
  showState() {
    const button = document.getElementById("notify-on");
    const state = document.getElementById("notify-state");
    if (!button || !state) return;
    const permission = this.supported() ? Notification.permission : "denied";
    button.hidden = permission === "granted";
    state.textContent = permission === "granted" ? "Chuông và thông báo đang bật."
      : permission === "denied" ? "Trình duyệt đang chặn thông báo: chỉ có chuông." : "";
  },
};

// Nodes that stay offline longer than the station's setting ring once each (remembered
// for the tab's life, so the dashboard's reloads do not ring again). Nodes never seen
// (not installed yet) do not ring.
const TOLD_KEY = "loaxa.offline-told";

function watchNodes() {
  const minutes = Number(document.body.dataset.offlineMin || 10);
  const told = new Set(JSON.parse(sessionStorage.getItem(TOLD_KEY) || "[]"));
  const check = async () => {
    let nodes;
    try { nodes = await api("GET", "/api/nodes"); } catch (e) { return; }
    const now = Date.now();
    const fresh = [];
    for (const n of nodes) {
      if (n.online || !n.last_seen) { told.delete(n.node_id); continue; }
      if (now - Date.parse(n.last_seen) >= minutes * 60_000 && !told.has(n.node_id)) {
        told.add(n.node_id);
        fresh.push(n.name || "Một cụm loa");
      }
    }
    sessionStorage.setItem(TOLD_KEY, JSON.stringify([...told]));
    if (fresh.length === 0) return;
    const after = `mất kết nối hơn ${minutes.toLocaleString("vi-VN")} phút`;
    LoaxaNotify.notify("Cụm loa mất kết nối", fresh.length === 1 ? `${fresh[0]} ${after}.`
      : `${fresh.length} cụm loa ${after}: ${fresh.join(", ")}.`, "nodes-offline");
  };
  check();
  setInterval(check, Math.min(30_000, Math.max(1_000, minutes * 15_000)));
}

function watchAlerts() {
  const source = new EventSource("/api/alerts/stream");
  source.addEventListener("alert", (event) => {
    const a = JSON.parse(event.data);
    LoaxaNotify.notify("Cảnh báo camera mới", `${a.kind_label} · ${a.node_name}`, `alert-${a.row}`);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("notify-on");
  if (button) button.addEventListener("click", () => LoaxaNotify.enable());
  document.addEventListener("click", () => LoaxaNotify.unlockAudio(), { once: true });
  LoaxaNotify.showState();
  if (document.body.dataset.watchNodes === "1") watchNodes();
  if (document.body.dataset.watchAlerts === "1" && document.body.dataset.page !== "alerts") watchAlerts();
});
