// The emergency page: compose or pick, choose whom it reaches, confirm, send; stop.
// Nothing goes out before the confirmation step says what will play where.
"use strict";

function chosen(form, name) {
  const input = form.querySelector(`input[name="${name}"]:checked`);
  return input ? input.value : null;
}

function emergencyRequest(form) {
  const body = { repeat: parseInt(form.repeat.value, 10) };
  if (form.volume.value) body.volume = parseInt(form.volume.value, 10);
  let what;
  if (chosen(form, "source") === "existing") {
    body.announcement_id = parseInt(form.announcement_id.value, 10);
    what = form.announcement_id.selectedOptions[0].textContent.trim();
  } else {
    const text = form.text.value.trim();
    if (!text) return { error: "Hãy nhập nội dung sẽ đọc trên loa." };
    body.text = text;
    body.title = form.title.value.trim() || "Thông báo khẩn cấp";
    body.engine = "auto";
    what = body.title;
  }
  let where;
  if (chosen(form, "reach") === "zones") {
    const zones = [...form.querySelectorAll('input[name="zone"]:checked')];
    if (!zones.length) return { error: "Hãy chọn ít nhất một thôn/khu." };
    body.targets = { zones: zones.map((z) => z.value) };
    const count = zones.reduce((sum, z) => sum + parseInt(z.dataset.count, 10), 0);
    where = `${zones.map((z) => z.dataset.name).join(", ")} (${count} cụm loa)`;
  } else {
    body.targets = { all: true };
    where = "tất cả cụm loa";
  }
  return { body, question: `Phát ngay «${what}» ${body.repeat} lần tới ${where}?` };
}

function setupEmergencyForm(form) {
  const error = document.getElementById("em-error");
  const confirm = document.getElementById("send-confirm");
  const count = document.getElementById("em-count");
  const show = (message) => { error.textContent = message; error.hidden = !message; };
  form.text.addEventListener("input", () => {
    count.textContent = `${form.text.value.length}/${count.dataset.max} ký tự`;
  });
  form.addEventListener("change", () => {
    const source = chosen(form, "source");
    form.querySelectorAll("[data-source]").forEach((el) => { el.hidden = el.dataset.source !== source; });
    const reach = chosen(form, "reach");
    form.querySelectorAll("[data-reach]").forEach((el) => { el.hidden = el.dataset.reach !== reach; });
    confirm.hidden = true;
  });
  let pending = null;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const request = emergencyRequest(form);
    show(request.error || "");
    if (request.error) return;
    pending = request.body;
    document.getElementById("send-question").textContent = request.question;
    confirm.hidden = false;
    document.getElementById("send-yes").focus();
  });
  document.getElementById("send-no").addEventListener("click", () => { confirm.hidden = true; pending = null; });
  document.getElementById("send-yes").addEventListener("click", async (event) => {
    if (!pending) return;
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const out = await api("POST", "/api/emergency", pending);
      pending = null;
      confirm.hidden = true;
      toast(`Đã phát khẩn cấp tới ${out.nodes} cụm loa.`);
      setTimeout(() => window.location.reload(), 1500);
    } catch (e) {
      show(e.message);
    } finally {
      button.disabled = false;
    }
  });
}

function setupStop() {
  const confirm = document.getElementById("stop-confirm");
  document.getElementById("stop-button").addEventListener("click", () => {
    confirm.hidden = false;
    document.getElementById("stop-yes").focus();
  });
  document.getElementById("stop-no").addEventListener("click", () => { confirm.hidden = true; });
  document.getElementById("stop-yes").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const out = await api("POST", "/api/emergency/stop", { targets: { all: true } });
      confirm.hidden = true;
      toast(`Đã dừng phát trên ${out.nodes} cụm loa.`);
      setTimeout(() => window.location.reload(), 1500);
    } catch (e) {
      toast(e.message, true);
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("emergency-form");
  if (!form) return;
  setupEmergencyForm(form);
  setupStop();
});
