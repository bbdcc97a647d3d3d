// The one WebSocket: connect, reconnect with backoff, numbered refs, frames dispatched by type.
// Panels register for the frame types they show and (re)subscribe when `hello` arrives. Binary
// messages are compact `fleet` frames, dispatched as the JSON frames they stand for.
import { FleetDecoder } from "./fleetcompact.js";

export function createConnection(store) {
  const handlers = new Map(); // type -> [fn]
  let ws = null;
  let attempt = 0;
  let refs = 0;
  let hello = null; // the last hello frame

  function setState(state, text) {
    store.set("conn", { state, text });
  }

  function dispatch(frame) {
    for (const fn of handlers.get(frame.type) || []) {
      try { fn(frame); } catch (error) { console.error("fleetdeck: handling", frame.type, error); }
    }
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // batch=1: a message may hold several frames as a JSON array (fewer writes for the gateway).
    const socket = new WebSocket(proto + "//" + location.host + "/ws?batch=1");
    socket.binaryType = "arraybuffer";
    const fleet = new FleetDecoder(); // what this connection's compact frames left out, it holds
    ws = socket;
    setState("connecting", "connecting…");
    socket.onmessage = (event) => {
      let message;
      if (event.data instanceof ArrayBuffer) {
        try { message = fleet.feed(event.data); } catch (error) {
          // Later frames build on this one: start again from a full frame on a new connection.
          console.error("fleetdeck: a compact fleet frame could not be read", error);
          socket.close();
          return;
        }
      } else {
        try { message = JSON.parse(event.data); } catch (e) { return; }
      }
      for (const frame of Array.isArray(message) ? message : [message]) {
        if (frame.type === "hello") { attempt = 0; hello = frame; }
        dispatch(frame);
      }
    };
    socket.onclose = () => {
      if (ws === socket) ws = null;
      reconnect();
    };
  }

  async function reconnect() {
    // A refused handshake looks like any other close; ask the API whether we are still logged in.
    try {
      const me = await fetch("/api/me", { credentials: "same-origin" });
      if (me.status === 401) { location.replace("/login"); return; }
    } catch (e) { /* gateway down: keep retrying */ }
    attempt += 1;
    const delay = Math.min(10000, 500 * 2 ** Math.min(attempt - 1, 5)) * (0.5 + Math.random() / 2);
    setState("reconnecting", "reconnecting in " + Math.ceil(delay / 1000) + "s");
    setTimeout(connect, delay);
  }

  return {
    connect,

    /** Register fn for frames of this type. */
    on(type, fn) {
      if (!handlers.has(type)) handlers.set(type, []);
      handlers.get(type).push(fn);
    },

    /**
     * Call fn(hello) on every (re)connection, and at once if the connection is already live: a
     * panel that starts after `hello` (it waited for a big library) still subscribes.
     */
    whenLive(fn) {
      this.on("hello", fn);
      if (hello && ws && ws.readyState === WebSocket.OPEN) fn(hello);
    },

    /** Send a frame; false when not connected (nothing is queued). */
    send(frame) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(frame));
      return true;
    },

    /** A fresh ref: `prefix` + a number, so replies and errors find their way back. */
    nextRef(prefix) {
      refs += 1;
      return prefix + refs;
    },

    /** The "live" state, once `hello` arrived. */
    online(text) { setState("online", text); },
  };
}
