// Alerts from the gateway into the store: the `alerts` topic (what fires on subscribing, then one
// `alert` frame per transition), the rules (GET /api/alerts/rules: each rule's metric for units,
// and why a reloaded rules file was refused), and silences (POST /api/alerts/silences; the gateway
// sends the whole `alerts` list again when the silences in effect change, and GET /api/alerts is
// asked again now and then). A gateway without the topic is never asked for it.
import { applyFiring, applyAlert, rulesOf, activeSilences } from "./alertsmodel.js";

const RULES_AGAIN_MS = 10_000; // an alert of a rule not known yet asks again, at most this often
const CALL_TIMEOUT_MS = 10_000;
const POLL_MS = 30_000; // rules (a refused reload) and silences (the `silenced` marks) asked again

async function call(method, url, body) {
  const answer = await fetch(url, {
    method, credentials: "same-origin", signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    headers: body ? { "Content-Type": "application/json" } : undefined,
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = null;
  try { data = await answer.json(); } catch (e) { /* no JSON body */ }
  if (!answer.ok) throw new Error((data && data.message) || answer.status + " " + answer.statusText);
  return data;
}

/** Whether this gateway serves the `alerts` topic (from /api/protocol). */
export const servesAlerts = (protocol) => (protocol.topics || []).includes("alerts");

export function alertsFeed(store, conn) {
  if (!servesAlerts(store.get("protocol"))) return null;
  let rulesAsked = 0;
  let silences = null; // the active silences when last asked; null: not asked since subscribing

  async function loadRules() {
    rulesAsked = Date.now();
    try {
      store.set("alertRules", rulesOf(await call("GET", "/api/alerts/rules")));
    } catch (error) {
      console.warn("fleetdeck: alert rules:", error.message);
    }
  }

  // The rules first, so values come with their units; then its own subscribe frame and ref: a
  // refusal of `alerts` never costs the page its other topics.
  conn.whenLive(async () => {
    await loadRules();
    conn.send({ type: "subscribe", topics: ["alerts"], ref: conn.nextRef("alerts") });
  });
  conn.on("alerts", (frame) => {
    silences = null;
    store.update("alerts", (model) => applyFiring(model, frame.alerts));
    checkSilences();
  });
  conn.on("alert", (frame) => {
    store.update("alerts", (model) => applyAlert(model, frame));
    if (!store.get("alertRules").metrics.has(frame.rule) && Date.now() - rulesAsked > RULES_AGAIN_MS) loadRules();
  });
  async function refreshFiring() {
    const now = await call("GET", "/api/alerts");
    store.update("alerts", (model) => applyFiring(model, now.firing));
  }

  async function checkSilences() {
    try {
      const active = activeSilences(await call("GET", "/api/alerts/silences"));
      if (silences !== null && active !== silences) await refreshFiring();
      silences = active;
    } catch (error) {
      console.warn("fleetdeck: alert silences:", error.message);
    }
  }

  setInterval(() => {
    if (store.get("conn").state !== "online") return;
    loadRules();
    checkSilences();
  }, POLL_MS);
  conn.on("error", (frame) => {
    if (frame.ref && frame.ref.startsWith("alerts")) console.warn("fleetdeck: alerts:", frame.message);
  });

  return {
    /** POST a silence (see alertsmodel.silenceRequest), then mark what it silences; throws the server's sentence. */
    async silence(body) {
      const created = await call("POST", "/api/alerts/silences", body);
      silences = null;
      await refreshFiring();
      checkSilences();
      return created;
    },
  };
}
