// loaxa pages: the little JavaScript they need. No framework, no build step.
// Every change goes to the JSON API with the session cookie and the CSRF header.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;

// On a phone the menu folds into one button instead of scrolling sideways out of sight.
document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.getElementById("menu-toggle");
  const nav = document.getElementById("site-nav");
  if (!toggle || !nav) return;
  toggle.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
});

async function api(method, url, body, { raw = false } = {}) {
  const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": CSRF } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    // The API's error shape: a Vietnamese ``message`` for people (shown as it is) and a
    // stable ``code`` for programs; nothing technical reaches the page.
    let message = "Có lỗi xảy ra. Hãy thử lại hoặc báo quản trị viên.";
    let code = "error";
    try {
      const data = await response.json();
      if (typeof data.message === "string" && data.message) message = data.message;
      if (typeof data.code === "string") code = data.code;
    } catch (e) { /* not JSON */ }
    if (response.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname); }
    const error = new Error(message);
    error.status = response.status;
    error.code = code;
    throw error;
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

function toast(message, bad = false) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.toggle("bad", bad);
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, bad ? 8000 : 4000);
}

async function busy(button, work) {
  button.disabled = true;
  try { return await work(); } catch (e) { toast(e.message, true); e.shown = true; throw e; } finally { button.disabled = false; }
}

// an error busy() has shown stops its caller (the throw), and is not a page error
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason && event.reason.shown) event.preventDefault();
});

// ------------------------------------------------------------------ schedule form
const TZ_OFFSET = "+07:00"; // Asia/Ho_Chi_Minh: no daylight saving

// the timing of a schedule form: once, weekly or daily, at one or several times of day
function timingOf(f) {
  const kind = f.get("kind");
  // several times of day in one schedule: the controller turns them into one rule
  const times = [...new Set(f.getAll("time").filter(Boolean))].sort();
  if (times.length === 0) throw new Error("Hãy chọn ít nhất một giờ phát.");
  const timing = { kind: "once", start_at: `${f.get("date")}T${times[0]}:00${TZ_OFFSET}`,
    timezone: "Asia/Ho_Chi_Minh", times };
  if (kind !== "once") {
    const days = f.getAll("byday");
    if (kind === "weekly" && days.length === 0) throw new Error("Chọn ít nhất một ngày trong tuần.");
    timing.kind = "rrule";
    timing.rule = kind === "weekly" ? `FREQ=WEEKLY;BYDAY=${days.join(",")}` : "FREQ=DAILY";
    timing.start_at = `${f.get("date")}T00:00:00${TZ_OFFSET}`;
  }
  if (f.get("until")) timing.until = `${f.get("until")}T23:59:59${TZ_OFFSET}`;
  return timing;
}

// whom a form's targets picker (targets_picker.html) names
function targetsOf(f) {
  const target = f.get("target");
  const targets = target === "all" ? { all: true } : { [target]: f.getAll(target) };
  if (target !== "all" && targets[target].length === 0) throw new Error("Chọn nơi phát.");
  return targets;
}

function scheduleBody(form) {
  const f = new FormData(form);
  const body = { announcement_id: Number(f.get("announcement_id")), targets: targetsOf(f),
    timing: timingOf(f), priority: f.get("priority"), repeat: Number(f.get("repeat") || 1) };
  if (f.get("volume") !== "") body.volume = Number(f.get("volume"));
  return body;
}

// a relay slot (the relay page): a station, a title and minutes instead of an announcement
function relayBody(form) {
  const f = new FormData(form);
  const minutes = Number(f.get("minutes"));
  if (!(minutes >= 1 && minutes <= 360)) throw new Error("Thời lượng tiếp sóng từ 1 đến 360 phút.");
  return { source_id: Number(f.get("source_id")), title: f.get("title") || "",
    targets: targetsOf(f), timing: timingOf(f), priority: f.get("priority"),
    duration_s: minutes * 60 };
}

// show only the picked targets' choices ([data-target]) and the picked kind's ([data-when])
function syncChoices(form) {
  const sync = () => {
    const f = new FormData(form);
    form.querySelectorAll("[data-when]").forEach((el) => { el.hidden = el.dataset.when !== f.get("kind"); });
    form.querySelectorAll("[data-target]").forEach((el) => { el.hidden = el.dataset.target !== f.get("target"); });
  };
  form.addEventListener("change", sync);
  sync();
}

// "+ Thêm giờ": one more time of day in the same schedule (06:00 and 17:00 in one save)
function setupTimes(form) {
  const list = form.querySelector("[data-times]");
  const add = form.querySelector("[data-add-time]");
  if (!list || !add) return;
  const renumber = () => list.querySelectorAll("[data-time-row]").forEach((row, i) => {
    row.querySelector("input").setAttribute("aria-label", `Giờ phát ${i + 1}`);
    row.querySelector("[data-remove-time]").hidden = i === 0;
  });
  add.addEventListener("click", () => {
    const rows = list.querySelectorAll("[data-time-row]");
    if (rows.length >= 12) { toast("Tối đa 12 giờ phát trong một lịch.", true); return; }
    const row = rows[0].cloneNode(true);
    row.querySelector("input").removeAttribute("id");
    row.querySelector("input").value = "";
    list.append(row);
    renumber();
    row.querySelector("input").focus();
  });
  list.addEventListener("click", (event) => {
    const remove = event.target.closest("[data-remove-time]");
    if (!remove) return;
    remove.closest("[data-time-row]").remove();
    renumber();
  });
  renumber();
}

// a form whose submit runs `work(its submit button)`; what goes wrong is said in its [data-error]
function onSubmit(form, work) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector("[data-error]");
    error.hidden = true;
    try {
      await work(form.querySelector("button[type=submit]"));
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  });
}

function setupScheduleForm(form) {
  setupTimes(form);
  syncChoices(form);
  const relay = form.dataset.relay !== undefined;
  onSubmit(form, async (button) => {
    const body = relay ? relayBody(form) : scheduleBody(form);
    const schedule = await busy(button, () => api("POST", relay ? "/api/relay-slots" : "/api/schedules", body));
    toast(relay ? "Đã lưu lịch tiếp sóng" : "Đã lưu lịch phát");
    form.dispatchEvent(new CustomEvent("scheduled", { detail: schedule, bubbles: true }));
  });
}

// ------------------------------------------------------------------ buttons
const ACTIONS = {
  approve: (id, note) => api("POST", `/api/announcements/${id}/approve`, { note }),
  reject: (id, note) => api("POST", `/api/announcements/${id}/reject`, { note }),
  submit: (id, note) => api("POST", `/api/announcements/${id}/submit`, { note }),
  "cancel-schedule": (id) => api("POST", `/api/schedules/${id}/cancel`),
};
const DONE = { approve: "Đã duyệt", reject: "Đã trả lại", submit: "Đã gửi duyệt",
  "cancel-schedule": "Đã huỷ lịch" };

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-schedule-form]").forEach(setupScheduleForm);
  if (["schedules", "relay"].includes(document.body.dataset.page)) {
    document.addEventListener("scheduled", () => setTimeout(() => location.reload(), 600));
  }
  document.querySelectorAll("button[data-action]").forEach((button) => {
    const action = ACTIONS[button.dataset.action];
    if (!action) return;
    button.addEventListener("click", async () => {
      if (button.dataset.action === "cancel-schedule" && !confirm("Huỷ lịch này?")) return;
      const noteInput = button.parentElement.querySelector("[data-note]");
      if (button.dataset.action === "reject" && noteInput && !noteInput.value.trim()) {
        toast("Hãy ghi lý do trả lại để người soạn biết cần sửa gì.", true);
        noteInput.focus();
        return;
      }
      await busy(button, () => action(button.dataset.id, noteInput ? noteInput.value : ""));
      toast(DONE[button.dataset.action]);
      setTimeout(() => location.reload(), 600);
    });
  });
  document.querySelectorAll("button[data-command]").forEach((button) => {
    button.addEventListener("click", async () => {
      const kind = button.dataset.command;
      const body = { kind };
      if (kind === "volume") {
        body.volume = Number(button.parentElement.querySelector("[data-volume-input]").value);
      }
      const out = await busy(button, () => api("POST", `/api/nodes/${button.dataset.node}/commands`, body));
      toast("Đã gửi lệnh");
      button.dataset.sent = out.command_id;
    });
  });
});
