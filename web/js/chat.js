// Team chat: recent messages when the page opens (each once: ids seen are skipped), then live.
import { $, h } from "./dom.js";
import { clock } from "./format.js";

const KEPT = 200;

export function chatPanel(store, conn) {
  const seen = new Set();
  const log = $("chat-log");
  $("chat-input").maxLength = store.get("protocol").limits.chat_chars;

  conn.whenLive(() => conn.send({ type: "subscribe", topics: ["chat"], ref: conn.nextRef("chatsub") }));
  conn.on("chat", (frame) => {
    if (frame.id) {
      if (seen.has(frame.id)) return;
      seen.add(frame.id);
    }
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(h("li", null,
      h("span", { class: "ts" }, clock(frame.ts)),
      h("span", { class: "from" }, frame.from),
      h("span", { class: "text" }, frame.text)));
    while (log.children.length > KEPT) log.firstChild.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  });
  conn.on("error", (frame) => {
    if (frame.ref && frame.ref.startsWith("chat")) $("chat-error").textContent = frame.message;
  });

  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text) return;
    $("chat-error").textContent = "";
    if (conn.send({ type: "chat", text, ref: conn.nextRef("chat") })) input.value = "";
    else $("chat-error").textContent = "Not connected; the message was not sent.";
  });
}
