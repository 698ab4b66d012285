// Villages, groups, holidays, words: each form saves through the JSON API, then the page
// reloads so what is shown is what the controller holds.
"use strict";

function saved(message) {
  toast(message);
  setTimeout(() => window.location.reload(), 800);
}

function errorBox(form) {
  return form.querySelector("[data-error]") || form.parentElement.querySelector("[data-error]");
}

function onSubmit(form, check, send, done) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = errorBox(form);
    const problem = check(form);
    if (box) { box.textContent = problem || ""; box.hidden = !problem; }
    if (problem) { if (!box) toast(problem, true); return; }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await send(form);
      saved(done(form));
    } catch (e) {
      if (box) { box.textContent = e.message; box.hidden = false; } else { toast(e.message, true); }
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page !== "villages") return;
  document.querySelectorAll("form.zone-form").forEach((form) => onSubmit(form,
    (f) => (!f.quiet_start.value || !f.quiet_end.value ? "Hãy nhập đủ giờ bắt đầu và kết thúc." : ""),
    (f) => api("PUT", "/api/zones", { commune: f.dataset.commune, code: f.dataset.zone,
      name: f.name.value.trim(), quiet_start: f.quiet_start.value, quiet_end: f.quiet_end.value }),
    (f) => `Đã lưu ${f.name.value.trim() || f.name.placeholder}.`));

  const group = document.getElementById("group-form");
  onSubmit(group,
    (f) => (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(f.name.value) ? "Tên nhóm chỉ gồm chữ thường không dấu, số và gạch ngang." : ""),
    (f) => api("PUT", "/api/groups", { name: f.name.value,
      node_ids: [...f.querySelectorAll("input[name=node]:checked")].map((c) => c.value) }),
    (f) => `Đã lưu nhóm ${f.name.value}.`);

  const holiday = document.getElementById("holiday-form");
  onSubmit(holiday,
    (f) => (!f.day.value ? "Hãy chọn ngày nghỉ." : ""),
    (f) => api("POST", "/api/calendar", { day: f.day.value, name: f.name.value.trim() }),
    () => "Đã thêm ngày nghỉ.");

  const word = document.getElementById("word-form");
  onSubmit(word,
    (f) => (!f.term.value.trim() || !f.reading.value.trim() ? "Hãy nhập cả từ và cách đọc." : ""),
    (f) => api("PUT", "/api/lexicon", { term: f.term.value.trim(), reading: f.reading.value.trim() }),
    (f) => `Đã lưu cách đọc «${f.term.value.trim()}».`);

  document.querySelectorAll("[data-delete-holiday]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.confirm("Xoá ngày nghỉ này?")) return;
      try { await api("DELETE", `/api/calendar/${button.dataset.deleteHoliday}`); saved("Đã xoá ngày nghỉ."); } catch (e) { toast(e.message, true); }
    });
  });
  document.querySelectorAll("[data-delete-word]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.confirm(`Xoá cách đọc «${button.dataset.deleteWord}»?`)) return;
      try { await api("DELETE", `/api/lexicon/${encodeURIComponent(button.dataset.deleteWord)}`); saved("Đã xoá cách đọc."); } catch (e) { toast(e.message, true); }
    });
  });
});
