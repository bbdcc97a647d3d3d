// The dashboard terminals as data: one tab per terminal, its state (connecting, open, host key
// refused, refused, closed), which tab is shown, and the sentence each state shows. No DOM, no
// socket: termpanel.js draws it and sends the frames.

export const MAX_TABS = 8; // the server's per-user limit (FLEETDECK_TERM_MAX_PER_USER) by default

/** Whether a reason from the server is about the host's key (the same words as exec's errors). */
export const aboutHostKey = (reason) => /host key/i.test(String(reason || ""));

/** What a tab's status line says, for a person. */
export function stateText(tab) {
  switch (tab.state) {
    case "connecting":
      return "Connecting to " + tab.host + "…";
    case "open":
      return "Connected to " + tab.host + " (" + tab.cols + "×" + tab.rows + ")";
    case "hostkey":
      return "Host key refused: " + tab.reason;
    case "refused":
      return "Not opened: " + tab.reason;
    case "closed": {
      // The server's reason usually says the status already ("the shell exited with status 3").
      const known = tab.exitCode === null || tab.exitCode === undefined || /\bstatus\b/.test(tab.reason);
      const status = known ? "" : " (exit status " + tab.exitCode + ")";
      return "Closed: " + tab.reason + status;
    }
    default:
      return tab.state;
  }
}

/** Whether a tab's terminal still runs (or is about to) on the host. */
export const isLive = (tab) => tab.state === "connecting" || tab.state === "open";

/**
 * The tabs. `open(host, ref, cols, rows)` adds one while its `term_open` is under way; the
 * server's frames move it on (`opened`, `closed`, `refused` by the open's ref).
 */
export function createTerms() {
  const tabs = [];
  let active = null; // a tab's key
  let keys = 0;

  const byKey = (key) => tabs.find((tab) => tab.key === key) || null;
  const byTerm = (term) => tabs.find((tab) => tab.term === term) || null;
  const byRef = (ref) => tabs.find((tab) => tab.ref === ref && tab.state === "connecting") || null;

  return {
    tabs,
    byKey,
    byTerm,
    byRef,
    get active() { return byKey(active); },

    /** Why another terminal may not be opened now, or "" when it may. */
    whyNot() {
      const live = tabs.filter(isLive).length;
      return live >= MAX_TABS ? "At most " + MAX_TABS + " terminals may be open at once; close one first." : "";
    },

    open(host, ref, cols, rows) {
      keys += 1;
      const tab = { key: "t" + keys, host, ref, term: null, cols, rows, state: "connecting", reason: "", exitCode: null };
      tabs.push(tab);
      active = tab.key;
      return tab;
    },

    /** `term_opened`: the tab its ref names now has its terminal id. */
    opened(frame) {
      const tab = byRef(frame.ref);
      if (!tab) return null;
      Object.assign(tab, { term: frame.term, state: "open", cols: frame.cols, rows: frame.rows });
      return tab;
    },

    /** `term_closed`: the shell exited or the session ended, with the reason. */
    closed(frame) {
      const tab = byTerm(frame.term) || (frame.ref ? byRef(frame.ref) : null);
      if (!tab || !isLive(tab)) return null;
      const hostKey = tab.state === "connecting" && aboutHostKey(frame.reason);
      Object.assign(tab, { state: hostKey ? "hostkey" : "closed", reason: frame.reason, exitCode: frame.exit_code });
      return tab;
    },

    /** An `error` frame for the open (its ref): the terminal was never opened. */
    refused(ref, message) {
      const tab = byRef(ref);
      if (!tab) return null;
      Object.assign(tab, { state: aboutHostKey(message) ? "hostkey" : "refused", reason: message });
      return tab;
    },

    /** The socket dropped: every terminal on it has ended on the server. */
    dropped() {
      const ended = tabs.filter(isLive);
      for (const tab of ended) Object.assign(tab, { state: "closed", reason: "the connection to the gateway dropped", exitCode: null });
      return ended;
    },

    /** A new size for a tab; true when it differs from the last one sent (send a term_resize). */
    resized(tab, cols, rows) {
      if (tab.cols === cols && tab.rows === rows) return false;
      tab.cols = cols;
      tab.rows = rows;
      return tab.state === "open";
    },

    select(key) {
      if (byKey(key)) active = key;
    },

    /** Forget a tab; the one beside it is shown next. */
    remove(key) {
      const at = tabs.findIndex((tab) => tab.key === key);
      if (at < 0) return null;
      const [tab] = tabs.splice(at, 1);
      if (active === key) active = tabs.length ? tabs[Math.min(at, tabs.length - 1)].key : null;
      return tab;
    },
  };
}
