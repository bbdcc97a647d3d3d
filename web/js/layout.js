// The frame around the panels: connection badge, who is logged in, log out, and on narrow screens
// one pane at a time behind tabs (Fleet, Hosts, Run, Chat).
import { $ } from "./dom.js";

export function layout(store) {
  store.subscribe("conn", ({ state, text }) => {
    const badge = $("conn-state");
    badge.className = "badge " + state;
    badge.dataset.state = state;
    badge.textContent = text;
  });
  store.subscribe("me", (me) => {
    $("whoami").textContent = me.user + " (" + me.role + ")";
    document.body.dataset.role = me.role;
  });
  $("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
    location.replace("/login");
  });

  const tabs = [...document.querySelectorAll("#tabs [data-tab]")];
  store.subscribe("tab", (tab) => {
    document.body.dataset.tab = tab;
    for (const button of tabs) button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  });
  for (const button of tabs) button.addEventListener("click", () => store.set("tab", button.dataset.tab));
  store.set("tab", store.get("tab"));
}
