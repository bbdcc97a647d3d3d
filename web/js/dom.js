// The one DOM helper: build elements with text (never HTML), find them, and batch redraws into
// animation frames.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * h("li", {class: "row", dataset: {host}, onclick: fn, title: "…"}, child, "text", [more]) builds an
 * element. Strings become text nodes, so host output or chat can never become markup.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && !key.includes("-")) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/**
 * A function that runs `draw` once in the next animation frame however often it is called before
 * then: many updates, one redraw.
 */
export function onNextFrame(draw) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  };
}

/**
 * As `onNextFrame`, but `draw` runs in a task of its own, once the frame's other drawing is done: at
 * 10,000 hosts the overview and the host list take most of a frame, and a chart drawn in the same
 * task would make it one the page cannot answer a click during.
 */
export function afterNextFrame(draw) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => setTimeout(() => {
      pending = false;
      draw();
    }, 0));
  };
}

/** Call `fn` whenever the element changes size (hidden tabs, window resizes, panes). */
export function onResize(el, fn) {
  const observer = new ResizeObserver(onNextFrame(fn));
  observer.observe(el);
  return observer;
}
