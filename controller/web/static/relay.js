// The relay page: stations (admins), a leader's relay at once, a slot's approve and cancel.
// The slot form itself is the shared schedule form (app.js, data-relay).
"use strict";

const RELAY_ACTIONS = {
  "approve-slot": { run: (id) => api("POST", `/api/relay-slots/${id}/approve`), done: "Đã duyệt lịch tiếp sóng" },
  "cancel-slot": { run: (id) => api("POST", `/api/relay-slots/${id}/cancel`), done: "Đã huỷ lịch tiếp sóng",
    ask: "Huỷ lịch tiếp sóng này? Nếu đang phát, loa sẽ dừng ngay." },
  "remove-source": { run: (id) => api("DELETE", `/api/stream-sources/${id}`), done: "Đã gỡ đài",
    ask: "Gỡ đài này? Các lịch tiếp sóng của đài cũng bị huỷ." },
};

function reloadSoon() { setTimeout(() => location.reload(), 600); }

// app.js's onSubmit: the form's fields to `work`, the page reloaded with what was saved
function formSubmit(form, work) {
  onSubmit(form, async (button) => {
    await busy(button, () => work(new FormData(form)));
    reloadSoon();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-relay-action]").forEach((button) => {
    const action = RELAY_ACTIONS[button.dataset.relayAction];
    button.addEventListener("click", async () => {
      if (action.ask && !confirm(action.ask)) return;
      await busy(button, () => action.run(button.dataset.id));
      toast(action.done);
      reloadSoon();
    });
  });
  const station = document.getElementById("station-form");
  if (station) {
    formSubmit(station, async (f) => {
      const name = (f.get("name") || "").trim();
      const url = (f.get("url") || "").trim();
      if (!name || !url) throw new Error("Hãy nhập tên đài và địa chỉ luồng phát.");
      await api("POST", "/api/stream-sources", { name, url });
      toast("Đã thêm đài");
    });
  }
  const now = document.getElementById("relay-now-form");
  if (now) {
    syncChoices(now);
    formSubmit(now, async (f) => {
      const minutes = Number(f.get("minutes"));
      if (!(minutes >= 1 && minutes <= 360)) throw new Error("Thời lượng tiếp sóng từ 1 đến 360 phút.");
      await api("POST", `/api/stream-sources/${f.get("source_id")}/relay`,
        { targets: targetsOf(f), duration_s: minutes * 60 });
      toast("Đã bắt đầu tiếp sóng");
    });
  }
});
