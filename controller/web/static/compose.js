// Compose: template → text, optional recording, preview (POST /api/preview), save a draft
// (POST /api/announcements), schedule it, send it for approval.
"use strict";

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

  // ---- recording: a refused file is cleared from the box and said so (it stays said)
  $("recording").addEventListener("change", async () => {
    const file = $("recording").files[0];
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
