// Compose: template → text, optional recording (a file, or a past live or relay session's
// recording from GET /api/live/recordings), preview (POST /api/preview), save a draft
// (POST /api/announcements), schedule it, send it for approval.
"use strict";

const WHEN = new Intl.DateTimeFormat("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit",
  minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric" });

// "1 giờ 2 phút 5 giây", "45 giây"
function durationWords(seconds) {
  const total = Math.max(1, Math.round(seconds));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  const parts = [];
  if (h) parts.push(`${h} giờ`);
  if (m) parts.push(`${m} phút`);
  if (s || !parts.length) parts.push(`${s} giây`);
  return parts.join(" ");
}

document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const templates = JSON.parse($("templates-data").textContent);
  const state = { upload: null, announcement: null, previewUrl: null };

  // ---- templates
  $("template").addEventListener("change", () => {
    const box = $("template-fields");
    box.replaceChildren();
    const t = templates.find((x) => x.id === $("template").value);
    $("template-actions").hidden = !t;
    if (!t) return;
    if (!$("title").value) $("title").value = t.title;
    for (const field of t.fields) {
      const label = document.createElement("label");
      label.textContent = field.label;
      label.htmlFor = `tf-${field.name}`;
      const input = document.createElement("input");
      input.id = `tf-${field.name}`;
      input.name = field.name;
      input.placeholder = field.example;
      input.dataset.field = field.name;
      box.append(label, input);
    }
  });
  $("fill-template").addEventListener("click", async (event) => {
    const values = {};
    $("template-fields").querySelectorAll("[data-field]").forEach((i) => { values[i.dataset.field] = i.value; });
    const out = await busy(event.currentTarget,
      () => api("POST", `/api/templates/${encodeURIComponent($("template").value)}/render`, { values }));
    $("text").value = out.text;
    toast("Đã điền nội dung từ mẫu");
  });

  // ---- text: a visible counter; over the limit nothing is previewed or saved
  setupCounter($("text"), $("text-count"));

  // ---- recordings of past live and relay sessions: one can be the announcement's
  // recording, as a file would be (the same state.upload)
  function markChosen(sha256) {
    $("recordings-list").querySelectorAll("button[data-use]").forEach((b) => {
      const chosen = b.dataset.use === sha256;
      b.setAttribute("aria-pressed", String(chosen));
      b.classList.toggle("primary", chosen);
      b.textContent = chosen ? "Đang dùng bản ghi này" : "Dùng bản ghi này";
    });
  }

  function recordingItem(r) {
    const li = document.createElement("li");
    li.dataset.recording = "";
    const title = document.createElement("strong");
    title.textContent = r.title;
    const kind = document.createElement("span");
    kind.className = "badge";
    kind.textContent = r.source === "relay" ? "Tiếp sóng" : "Phát trực tiếp";
    const about = document.createElement("div");
    about.className = "muted";
    const who = document.createElement("span");
    if (r.speaker) {
      who.textContent = r.speaker;
    } else {
      who.className = "login-name";
      who.textContent = r.started_by;
    }
    about.append(`${WHEN.format(new Date(r.started_at))} · dài ${durationWords(r.duration_s)} · `
      + (r.source === "relay" ? "đài " : "người nói: "), who);
    const use = document.createElement("button");
    use.type = "button";
    use.dataset.use = r.upload;
    use.textContent = "Dùng bản ghi này";
    use.addEventListener("click", () => {
      if (state.announcement || state.uploading) return;
      $("recording").value = "";
      state.refused = null;
      state.upload = { sha256: r.upload, original_name: r.title, duration_s: r.duration_s };
      $("upload-info").classList.remove("error");
      $("upload-info").textContent = `Đã chọn bản ghi «${r.title}» `
        + `(${r.source === "relay" ? "tiếp sóng" : "phát trực tiếp"}, dài ${durationWords(r.duration_s)})`;
      markChosen(r.upload);
      toast(`Bản tin sẽ dùng bản ghi «${r.title}»`);
    });
    const head = document.createElement("div");
    head.className = "row";
    head.append(title, kind);
    li.append(head, about, use);
    return li;
  }

  async function loadRecordings() {
    try {
      const list = await api("GET", "/api/live/recordings");
      $("recordings-list").replaceChildren(...list.map(recordingItem));
      $("recordings-state").textContent = list.length ? ""
        : "Chưa có bản ghi nào. Sau mỗi buổi phát trực tiếp hoặc tiếp sóng, bản ghi của "
          + "buổi đó sẽ hiện ở đây.";
      $("recordings-state").hidden = !!list.length;
    } catch (e) {
      $("recordings-state").textContent = "Không tải được danh sách bản ghi: tải lại trang để thử lại.";
    }
  }
  loadRecordings();

  // ---- recording: a refused file is cleared from the box and said so (it stays said)
  $("recording").addEventListener("change", async () => {
    const file = $("recording").files[0];
    markChosen(null);
    state.upload = null;
    state.refused = null;
    state.uploading = false;
    $("upload-info").textContent = "";
    $("upload-info").classList.remove("error");
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    $("upload-info").textContent = "Đang tải lên…";
    state.uploading = true;
    try {
      state.upload = await api("POST", "/api/uploads", form);
      $("upload-info").textContent =
        `Đã tải lên: ${state.upload.original_name} (${state.upload.duration_s.toFixed(1)} giây)`;
    } catch (e) {
      $("recording").value = "";
      state.refused = file.name;
      $("upload-info").classList.add("error");
      $("upload-info").textContent = `Không nhận tệp «${file.name}»: ${e.message} `
        + "Bản ghi âm này chưa được đính kèm.";
    } finally {
      state.uploading = false;
    }
  });

  // What is wrong with the content before anything is sent ("" when fine). A refused
  // recording is said again at save time; a second press saves without it.
  function problem(saving) {
    const long = tooLong($("text"));
    if (long) return long;
    if (state.uploading) return "Đang tải bản ghi âm lên: đợi xong rồi bấm lại.";
    if (saving && state.refused && !state.upload && state.refusedSeen !== state.refused) {
      state.refusedSeen = state.refused;
      return `Bản ghi âm «${state.refused}» đã bị từ chối nên chưa được đính kèm. Chọn tệp khác, `
        + "hoặc bấm «Lưu bản nháp» lần nữa để lưu không có bản ghi âm.";
    }
    return "";
  }

  // The words as they will be spoken, beside the preview; false when there are none.
  async function checkReading() {
    const text = $("text").value.trim();
    $("reading-box").hidden = !text;
    if (!text) return !!state.upload;
    const words = await showReading(text, $("reading"));
    return words || !!state.upload;
  }

  function body() {
    const text = $("text").value.trim();
    if (!text && !state.upload) throw new Error("Hãy nhập nội dung hoặc chọn bản ghi âm.");
    const common = { title: $("title").value.trim(), engine: $("engine").value,
      repeat: Number($("repeat").value || 1) };
    if (!state.upload) return { ...common, text };
    const items = [{ kind: "chime" }];
    if (text) items.push({ kind: "speech", text });
    items.push({ kind: "recording", upload: state.upload.sha256 }, { kind: "outro" });
    return { ...common, items };
  }

  function showError(e) {
    $("compose-error").textContent = e.message;
    $("compose-error").hidden = false;
  }

  // Checks every press goes through: length, upload, words. Throws the reason.
  async function ready(saving) {
    const p = problem(saving);
    if (p) throw new Error(p);
    const request = body();
    if (!(await checkReading())) {
      throw new Error("Nội dung không có chữ nào để đọc: hãy viết nội dung hoặc chọn bản ghi âm.");
    }
    return request;
  }

  // ---- preview
  $("preview").addEventListener("click", async (event) => {
    $("compose-error").hidden = true;
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const request = await ready(false);
      const response = await api("POST", "/api/preview", request, { raw: true });
      const blob = await response.blob();
      if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
      state.previewUrl = URL.createObjectURL(blob);
      $("player").src = state.previewUrl;
      $("player").hidden = false;
      $("player").dataset.ready = "1";
      const engine = response.headers.get("X-Loaxa-Engine");
      const seconds = Number(response.headers.get("X-Loaxa-Duration") || 0);
      const fallback = response.headers.get("X-Loaxa-Fallback");
      $("preview-info").textContent = `Giọng: ${engine}, dài ${seconds.toFixed(1)} giây`
        + (fallback ? " (không dùng được giọng đã chọn, đã đọc bằng giọng dự phòng)" : "");
    } catch (e) { showError(e); } finally { button.disabled = false; }
  });

  // ---- save: once. The button stays disabled after it worked (no duplicate); further
  // changes are made on the announcement's own page.
  $("save").addEventListener("click", async (event) => {
    $("compose-error").hidden = true;
    const button = event.currentTarget;
    if (state.announcement) return;
    button.disabled = true;
    try {
      const request = await ready(true);
      button.textContent = "Đang lưu…";
      const a = await api("POST", "/api/announcements", request);
      state.announcement = a;
      button.textContent = "Đã lưu";
      ["title", "text", "template", "recording", "engine", "repeat"].forEach((id) => {
        $(id).disabled = true;
      });
      $("recordings-list").querySelectorAll("button[data-use]").forEach((b) => { b.disabled = true; });
      $("saved-title").textContent = `“${a.title || "không tên"}”`;
      $("saved-link").dataset.id = a.id;
      $("saved-link").href = `/announcements/${a.id}`;
      $("edit-link").href = `/announcements/${a.id}`;
      $("saved-status").textContent = "Nháp";
      $("saved").hidden = false;
      $("player").src = `/audio/announcements/${a.id}`;
      $("player").hidden = false;
      $("schedule-card").hidden = false;
      document.querySelector("[data-schedule-form] [name=announcement_id]").value = a.id;
      toast(`Đã lưu bản tin “${a.title || "không tên"}”`);
    } catch (e) {
      showError(e);
      button.textContent = "Lưu bản nháp";
    } finally {
      if (!state.announcement) button.disabled = false;
    }
  });

  // ---- after scheduling: submit for approval (and a leader may approve at once)
  document.addEventListener("scheduled", () => { $("after-schedule").hidden = false; });
  $("submit-approval").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    const a = await busy(button,
      () => api("POST", `/api/announcements/${state.announcement.id}/submit`, { note: "" }));
    $("saved-status").textContent = "Chờ duyệt";
    $("saved-status").className = "badge submitted";
    button.hidden = true;
    if ($("approve-now")) $("approve-now").hidden = false;
    toast(`Đã gửi duyệt bản tin “${a.title || "không tên"}”`);
  });
  if ($("approve-now")) {
    $("approve-now").addEventListener("click", async (event) => {
      const button = event.currentTarget;
      const a = await busy(button,
        () => api("POST", `/api/announcements/${state.announcement.id}/approve`, { note: "" }));
      $("saved-status").textContent = a.status === "scheduled" ? "Đã lên lịch" : "Đã duyệt";
      $("saved-status").className = `badge ${a.status}`;
      button.hidden = true;
      toast(`Đã duyệt bản tin “${a.title || "không tên"}”`);
    });
  }
});
