// Whether the dashboard's times are local or UTC: one setting for every chart, kept in
// localStorage, with a button in the top bar that names the zone shown and switches it.
import { $ } from "./dom.js";
import { zoneName } from "./timerange.js";

const KEY = "fleetdeck.utc";
const listeners = new Set();
let utc = localStorage.getItem(KEY) === "1";

/** True when times are shown in UTC. */
export const isUtc = () => utc;

/** Call fn(utc) whenever the setting changes. */
export function onZoneChange(fn) {
  listeners.add(fn);
}

function show(button) {
  button.textContent = utc ? "UTC" : zoneName(false) + " (local)";
  button.setAttribute("aria-pressed", String(utc));
  button.title = utc ? "times in UTC; show local time" : "times in local time; show UTC";
  button.dataset.zone = utc ? "utc" : "local";
}

/** Wire the top bar's zone button. */
export function zoneToggle() {
  const button = $("zone-toggle");
  show(button);
  button.addEventListener("click", () => {
    utc = !utc;
    localStorage.setItem(KEY, utc ? "1" : "0");
    show(button);
    for (const fn of listeners) fn(utc);
  });
}
