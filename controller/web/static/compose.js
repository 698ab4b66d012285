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

  // ---- recording
  $("recording").addEventListener("change", async () => {
    const file = $("recording").files[0];
    state.upload = null;
    $("upload-info").textContent = "";
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    $("upload-info").textContent = "Đang tải lên…";
    try {
      state.upload = await api("POST", "/api/uploads", form);
      $("upload-info").textContent =
        `Đã tải lên: ${state.upload.original_name} (${state.upload.duration_s.toFixed(1)} giây)`;
    } catch (e) {
      $("upload-info").textContent = "";
      toast(e.message, true);
    }
  });

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

  // ---- preview
  $("preview").addEventListener("click", async (event) => {
    $("compose-error").hidden = true;
    try {
      const response = await busy(event.currentTarget, () => api("POST", "/api/preview", body(), { raw: true }));
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
        + (fallback ? ` (dự phòng: ${fallback})` : "");
    } catch (e) { showError(e); }
  });

  // ---- save
  $("save").addEventListener("click", async (event) => {
    $("compose-error").hidden = true;
    try {
      const a = await busy(event.currentTarget, () => api("POST", "/api/announcements", body()));
      state.announcement = a;
      $("saved-id").textContent = a.id;
      $("saved-status").textContent = "Nháp";
      $("saved").hidden = false;
      $("player").src = `/audio/announcements/${a.id}`;
      $("player").hidden = false;
      $("schedule-card").hidden = false;
      document.querySelector("[data-schedule-form] [name=announcement_id]").value = a.id;
      toast(`Đã lưu bản tin #${a.id}`);
    } catch (e) { showError(e); }
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
    toast(`Đã gửi duyệt bản tin #${a.id}`);
  });
  if ($("approve-now")) {
    $("approve-now").addEventListener("click", async (event) => {
      const button = event.currentTarget;
      const a = await busy(button,
        () => api("POST", `/api/announcements/${state.announcement.id}/approve`, { note: "" }));
      $("saved-status").textContent = a.status === "scheduled" ? "Đã lên lịch" : "Đã duyệt";
      $("saved-status").className = `badge ${a.status}`;
      button.hidden = true;
      toast(`Đã duyệt bản tin #${a.id}`);
    });
  }
});
