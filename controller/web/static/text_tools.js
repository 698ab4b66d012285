// Shared by the compose and announcement pages: the character counter (text over the
// limit is refused visibly, never cut), and how the text will really be read aloud.
"use strict";

const MAX_TEXT = 5000;

// The counter under a text box: "123 / 5.000 ký tự"; over the limit it turns red and
// says so. `tooLong(textarea)` tells the page not to preview or save.
function setupCounter(textarea, counter) {
  const max = Number(textarea.dataset.max || MAX_TEXT);
  const show = () => {
    const n = textarea.value.length;
    const over = n > max;
    counter.textContent = `${n.toLocaleString("vi-VN")} / ${max.toLocaleString("vi-VN")} ký tự`
      + (over ? ` — quá ${(n - max).toLocaleString("vi-VN")} ký tự, hãy rút gọn` : "");
    counter.classList.toggle("over", over);
    textarea.setAttribute("aria-invalid", String(over));
  };
  textarea.addEventListener("input", show);
  show();
  return show;
}

function tooLong(textarea) {
  const max = Number(textarea.dataset.max || MAX_TEXT);
  return textarea.value.length > max
    ? `Nội dung dài ${textarea.value.length.toLocaleString("vi-VN")} ký tự, quá giới hạn ${max.toLocaleString("vi-VN")}: hãy rút gọn trước khi nghe thử hoặc lưu.`
    : "";
}

// POST /api/reading: the normalised words (numbers, dates, abbreviations, the commune's
// lexicon), shown as they will be spoken. Returns whether there is anything to say.
async function showReading(text, box) {
  if (!text.trim()) {
    box.textContent = "";
    return false;
  }
  const out = await api("POST", "/api/reading", { text });
  box.textContent = out.has_words ? out.reading : "(không có chữ nào để đọc)";
  box.classList.toggle("empty", !out.has_words);
  return out.has_words;
}
