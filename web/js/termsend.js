// What the terminals send, paced: the gateway takes about 20 messages a second per socket (bursts
// of 60), and a fast typist, key repeat or a mouse-reporting program (vim, htop) sends more. The first
// frame goes at once; what follows within `interval` waits for one flush, keys of one terminal joined
// into one term_input and a run of resizes into the last one, in the order they happened.

export const INTERVAL_MS = 60;
export const MAX_INPUT = 4096; // characters per term_input (the server takes up to 16384)

/** Pieces of at most `max` characters, never splitting a surrogate pair. */
export function chunks(text, max = MAX_INPUT) {
  const out = [];
  for (let at = 0; at < text.length;) {
    let end = Math.min(text.length, at + max);
    if (end < text.length && /[\ud800-\udbff]/.test(text[end - 1])) end -= 1;
    out.push(text.slice(at, end));
    at = end;
  }
  return out;
}

/**
 * `send(frame)` paced: `input(term, data)`, `resize(term, cols, rows)`, `close(term)` queue frames;
 * `now()` and `later(fn, ms)` are the clock and the timer (injected for tests).
 */
export function createSender(send, { interval = INTERVAL_MS, now = () => Date.now(), later = setTimeout } = {}) {
  const queue = [];
  let last = -Infinity;
  let timer = null;

  function flush() {
    timer = null;
    last = now();
    for (const frame of queue.splice(0)) {
      if (frame.type === "term_input") for (const data of chunks(frame.data)) send({ ...frame, data });
      else send(frame);
    }
  }

  function push(frame) {
    const tail = queue[queue.length - 1];
    if (tail && tail.term === frame.term && tail.type === frame.type && frame.type === "term_input") tail.data += frame.data;
    else if (tail && tail.term === frame.term && tail.type === frame.type && frame.type === "term_resize") queue[queue.length - 1] = frame;
    else queue.push(frame);
    if (timer !== null) return;
    const wait = last + interval - now();
    if (wait <= 0 || frame.type === "term_close") flush();
    else timer = later(flush, wait);
  }

  return {
    input: (term, data) => push({ type: "term_input", term, data }),
    resize: (term, cols, rows) => push({ type: "term_resize", term, cols, rows }),
    close: (term) => push({ type: "term_close", term }),
  };
}
