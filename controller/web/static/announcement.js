// One announcement: edit (PATCH /api/announcements/{id}), see how it will be read, delete
// (DELETE) when the rules allow. Approve / reject / submit buttons are app.js's.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const id = $("meta").dataset.announcement;
  const form = $("edit-form");
  if (form) {
    setupCounter($("text"), $("text-count"));
    const fail = (message) => { $("edit-error").textContent = message; $("edit-error").hidden = false; };
    const reading = async () => {
      const problem = tooLong($("text"));
      if (problem) { fail(problem); return false; }
      return showReading($("text").value, $("reading"));
    };
    $("show-reading").addEventListener("click", async () => {
      $("edit-error").hidden = true;
      try { await reading(); } catch (e) { fail(e.message); }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      $("edit-error").hidden = true;
      const button = $("save-edit");
      let saved = false;
      button.disabled = true;
      try {
        const text = $("text").value.trim();
        if (!text) { fail("Hãy nhập nội dung đọc."); return; }
        if (!(await reading())) { if ($("edit-error").hidden) fail("Nội dung không có chữ nào để đọc."); return; }
        const a = await api("PATCH", `/api/announcements/${id}`, {
          title: $("title").value.trim(), text, engine: $("engine").value });
        $("status").textContent = { draft: "Nháp", submitted: "Chờ duyệt", approved: "Đã duyệt",
          scheduled: "Đã lên lịch" }[a.status] || "";
        $("status").className = `badge ${a.status}`;
        saved = true;
        toast("Đã lưu thay đổi");
        setTimeout(() => location.reload(), 900);
      } catch (e) {
        fail(e.message);
      } finally {
        if (!saved) button.disabled = false;
      }
    });
  }
  const del = $("delete");
  if (del) {
    del.addEventListener("click", async () => {
      if (!confirm("Xoá hẳn bản tin này và các lịch phát của nó?")) return;
      del.disabled = true;
      try {
        await api("DELETE", `/api/announcements/${id}`);
        toast("Đã xoá bản tin");
        setTimeout(() => { location.href = "/schedules"; }, 700);
      } catch (e) {
        $("delete-error").textContent = e.message;
        $("delete-error").hidden = false;
        del.disabled = false;
      }
    });
  }
});
