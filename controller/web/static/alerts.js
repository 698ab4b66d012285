// The alert desk: new alerts arrive over Server-Sent Events (GET /api/alerts/stream) and
// are drawn at the top without a reload; officers acknowledge, resolve or mark a false
// alarm with a note. Cards are filled with textContent only (never HTML from the wire).
"use strict";

const KIND_LABELS = { no_helmet: "Không đội mũ bảo hiểm", motion: "Phát hiện chuyển động",
  littering: "Xả rác", dumping: "Đổ rác", intrusion: "Xâm nhập" };
const STATE_LABELS = { new: "Mới", acknowledged: "Đã tiếp nhận", resolved: "Đã xử lý",
  false_alarm: "Báo động giả" };
const TIME = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit",
  minute: "2-digit", second: "2-digit", day: "2-digit", month: "2-digit", year: "numeric" });
const DAY = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh" }); // YYYY-MM-DD

const fmt = (iso) => (iso ? TIME.format(new Date(iso)) : "");

function fill(card, a) {
  const f = (name) => card.querySelector(`[data-f="${name}"]`);
  card.dataset.alert = a.alert_id;
  card.dataset.state = a.state;
  card.dataset.at = a.at;
  f("kind").textContent = a.kind_label || KIND_LABELS[a.kind] || "Cảnh báo camera";
  f("state").textContent = STATE_LABELS[a.state] || a.state;
  f("state").className = `badge ${a.state}`;
  f("node").textContent = a.node_name || a.node_id;
  f("camera").textContent = a.camera_name || a.camera;
  if (a.zone_names) f("zones").textContent = a.zone_names.join(", ");
  card.dataset.evidence = a.evidence_url || "";
  f("at").textContent = fmt(a.at);
  f("confidence").textContent = Math.round(a.confidence * 100);
  let who = "";
  if (a.acknowledged_by) who += `Tiếp nhận: ${a.acknowledged_by_name || a.acknowledged_by} lúc ${fmt(a.acknowledged_at)}. `;
  if (a.handled_by) who += `Kết thúc: ${a.handled_by_name || a.handled_by} lúc ${fmt(a.handled_at)}.`;
  f("who").textContent = who;
  f("note").textContent = a.note || "";
  const before = f("before");
  if (before && a.before_url) {
    const bimg = f("before-img");
    if (bimg.getAttribute("src") !== a.before_url) bimg.src = a.before_url;
    before.hidden = false;
  }
  const img = f("img");
  const noimg = f("noimg");
  if (img && a.snapshot_url) {
    if (img.getAttribute("src") !== a.snapshot_url) img.src = a.snapshot_url;
    if (noimg) noimg.remove();
  } else if (img && noimg) {
    img.remove();
  }
}

function matchesFilters(a) {
  const f = new FormData(document.getElementById("filters"));
  if (f.get("zone") && !(a.zones || []).includes(f.get("zone"))) return false;
  if (f.get("camera") && `${a.node_id}/${a.camera}` !== f.get("camera")) return false;
  if (f.get("kind") && a.kind !== f.get("kind")) return false;
  if (f.get("state") && a.state !== f.get("state")) return false;
  if (f.get("day") && DAY.format(new Date(a.at)) !== f.get("day")) return false;
  return true;
}

function findCard(alertId) {
  return [...document.querySelectorAll("#alerts .alert")].find((c) => c.dataset.alert === alertId);
}

function addAlert(a) {
  if (findCard(a.alert_id)) return;
  if (!matchesFilters(a)) {
    const n = document.getElementById("outside-count");
    n.textContent = Number(n.textContent) + 1;
    document.getElementById("outside").hidden = false;
    return;
  }
  const card = document.getElementById("alert-template").content.firstElementChild.cloneNode(true);
  fill(card, a);
  card.classList.add("fresh");
  card.dataset.shownAt = String(Date.now()); // when it appeared: the latency test reads it
  document.getElementById("alerts").prepend(card);
  const count = document.getElementById("count");
  count.textContent = Number(count.textContent) + 1;
  document.getElementById("empty").hidden = true;
  if (navigator.vibrate) navigator.vibrate(200);
  LoaxaNotify.notify("Cảnh báo camera mới", `${a.kind_label} · ${a.node_name}`, `alert-${a.row}`);
}

// Tap a snapshot: the evidence picture full size (labelled, with time, place and camera
// drawn on it by the controller), to look at and to download.
function openViewer(card) {
  const url = card.dataset.evidence;
  if (!url) return;
  const viewer = document.getElementById("viewer");
  document.getElementById("viewer-img").src = url;
  document.getElementById("viewer-download").href = url;
  viewer.showModal();
}

async function transition(card, button, action, note) {
  const a = await busy(button, () => api("POST",
    `/api/alerts/${encodeURIComponent(card.dataset.alert)}/${action}`, { note }));
  fill(card, a);
  toast(STATE_LABELS[a.state]);
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/alerts/stream");
  source.addEventListener("open", () => { live.classList.add("on"); live.dataset.connected = "1"; });
  source.addEventListener("error", () => { live.classList.remove("on"); live.dataset.connected = ""; });
  source.addEventListener("alert", (event) => addAlert(JSON.parse(event.data)));
  source.addEventListener("update", (event) => {
    const a = JSON.parse(event.data);
    const card = findCard(a.alert_id);
    if (card) fill(card, a);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("filters").addEventListener("change", (e) => e.currentTarget.submit());
  document.getElementById("alerts").addEventListener("click", async (event) => {
    const card = event.target.closest(".alert");
    if (!card) return;
    if (event.target.matches('img[data-f="img"]')) { openViewer(card); return; }
    const confirmBox = card.querySelector('[data-f="confirm-false"]');
    const confirmButton = event.target.closest("button[data-confirm]");
    if (confirmButton) {
      if (confirmButton.dataset.confirm === "cancel") { confirmBox.hidden = true; return; }
      const reason = confirmBox.querySelector("input[name=reason]");
      if (!reason.value.trim()) { toast("Hãy ghi ngắn gọn lý do đây là báo động giả.", true); reason.focus(); return; }
      await transition(card, confirmButton, "false-alarm", reason.value);
      reason.value = "";
      confirmBox.hidden = true;
      return;
    }
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.action === "false-alarm") {  // a confirmation step with a reason
      confirmBox.hidden = false;
      confirmBox.querySelector("input[name=reason]").focus();
      return;
    }
    const note = card.querySelector("input[name=note]");
    await transition(card, button, button.dataset.action, note.value);
    note.value = "";
  });
  document.getElementById("alerts").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches('img[data-f="img"]')) openViewer(event.target.closest(".alert"));
  });
  document.getElementById("viewer-close").addEventListener("click", () => document.getElementById("viewer").close());
  connect();
});
