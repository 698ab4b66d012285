// The nodes page: remote operations (POST /api/operations) and each node's reply.
// Replies are shown with the Vietnamese `message` the controller writes, never the
// node's own detail text; everything goes in with textContent (no markup from data).
"use strict";

const OP_TITLES = { volume: "Đặt âm lượng", test_tone: "Phát tiếng thử", restart: "Khởi động lại",
  config: "Đổi cấu hình", versions: "Phiên bản" };
const POLL_MS = 1000;
const POLL_MAX = 180; // a config trial may take its trial time plus a reconnect

function opBody(button) {
  const kind = button.dataset.op;
  const body = { kind, wait_s: 8 };
  if (button.hasAttribute("data-all")) {
    body.all = true;
  } else {
    body.nodes = [button.closest("tr[data-node]").dataset.node];
  }
  const cell = button.closest("td");
  if (kind === "volume") body.volume = Number(cell.querySelector("[data-volume-input]").value);
  if (kind === "config") {
    body.config_yaml = cell.querySelector("[data-config-input]").value;
    body.trial_s = Number(cell.querySelector("[data-trial-input]").value || 60);
    body.wait_s = 15;
  }
  return body;
}

function showOperation(op) {
  const panel = document.getElementById("operation-result");
  panel.hidden = false;
  panel.dataset.operation = op.id;
  panel.querySelector("[data-op-title]").textContent = `Kết quả: ${OP_TITLES[op.kind] || ""}`;
  const answered = op.nodes.filter((n) => n.state === "answered").length;
  const silent = op.nodes.filter((n) => n.state === "no_answer").length;
  panel.querySelector("[data-op-summary]").textContent =
    `${answered}/${op.nodes.length} cụm loa đã trả lời` + (silent ? `, ${silent} không trả lời` : "")
    + (op.finished ? "." : "; đang chờ…");
  const rows = panel.querySelector("[data-op-rows]");
  rows.replaceChildren();
  for (const n of op.nodes) {
    const tr = document.createElement("tr");
    tr.dataset.state = n.state;
    tr.dataset.ok = String(n.ok);
    const name = document.createElement("td");
    name.dataset.label = "Cụm loa";
    name.textContent = n.name;
    const result = document.createElement("td");
    result.dataset.label = "Kết quả";
    const badge = document.createElement("span");
    badge.className = "badge " + (n.state === "answered" ? (n.ok ? "online" : "offline")
      : n.state === "no_answer" ? "offline" : "submitted");
    badge.textContent = n.message;
    result.append(badge);
    tr.append(name, result);
    rows.append(tr);
    const cell = document.querySelector(`tr[data-node="${CSS.escape(n.node_id)}"] [data-result]`);
    if (cell) cell.textContent = n.message;
  }
}

async function follow(op) {
  showOperation(op);
  for (let i = 0; !op.finished && i < POLL_MAX; i++) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    op = await api("GET", `/api/operations/${op.id}`);
    showOperation(op);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-op]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
      let body;
      try { body = opBody(button); } catch (e) { toast(e.message, true); return; }
      button.disabled = true;
      try {
        await follow(await api("POST", "/api/operations", body));
      } catch (e) {
        toast(e.message.replace(/^\d{3}: /, ""), true); // the controller's Vietnamese message
      } finally {
        button.disabled = false;
      }
    });
  });
});
