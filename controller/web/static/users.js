// The admin's accounts page: edit a name or role, lock or unlock, reset a password (the
// generated one is shown here once). Every change goes to the JSON API (/api/users/…).
"use strict";

const USER_DONE = { lock: "Đã khoá tài khoản", unlock: "Đã mở khoá tài khoản" };

function userUrl(row, tail = "") {
  return `/api/users/${encodeURIComponent(row.dataset.username)}${tail}`;
}

function showError(row, message) {
  const el = row.querySelector("[data-error]");
  el.textContent = message;
  el.hidden = !message;
}

async function userAction(row, button) {
  const action = button.dataset.userAction;
  const reset = row.querySelector('[data-f="reset"]');
  showError(row, "");
  if (action === "reset") { reset.hidden = false; return; }
  if (action === "reset-cancel") { reset.hidden = true; return; }
  if (action === "reset-confirm") {
    const input = row.querySelector("input[name=new_password]");
    if (input.value && input.value.length < 10) { showError(row, "Mật khẩu cần ít nhất 10 ký tự."); return; }
    const out = await busy(button, () => api("POST", userUrl(row, "/password"),
      input.value ? { password: input.value } : {}));
    input.value = "";
    reset.hidden = true;
    if (out.generated) {
      row.querySelector('[data-f="password"]').textContent = out.password;
      row.querySelector('[data-f="once"]').hidden = false;
    }
    toast("Đã đặt lại mật khẩu: các phiên đăng nhập cũ đã dừng");
    return;
  }
  const name = row.querySelector('[data-f="name"]').textContent;
  if (action === "lock" && !confirm(`Khoá tài khoản ${name}? Người này bị đăng xuất ngay.`)) return;
  await busy(button, () => api("POST", userUrl(row, `/${action}`)));
  toast(USER_DONE[action]);
  setTimeout(() => location.reload(), 600);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.user-row").forEach((row) => {
    row.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(row, "");
      const f = new FormData(row);
      const button = row.querySelector("button[type=submit]");
      try {
        const out = await busy(button, () => api("PATCH", userUrl(row),
          { full_name: f.get("full_name"), role: f.get("role") }));
        row.querySelector('[data-f="name"]').textContent = out.full_name || row.dataset.username;
        toast("Đã lưu tài khoản");
      } catch (e) { showError(row, e.message); }
    });
    row.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-user-action]");
      if (button) userAction(row, button).catch((e) => showError(row, e.message));
    });
  });
});
