// Where each host's cell sits on the overview canvas. Pure: sizes in CSS pixels.

export const GAP = 2;
const LARGEST = 28;
const SMALLEST = 6;

/**
 * The biggest square cells (28 px down to 6) that fit `count` hosts into `width` without the grid
 * growing taller than `maxHeight`; below 6 px the grid grows instead.
 */
export function gridLayout(width, count, maxHeight) {
  let layout = null;
  for (let size = LARGEST; size >= SMALLEST; size -= 1) {
    const cols = Math.max(1, Math.floor((width + GAP) / (size + GAP)));
    const rows = Math.max(1, Math.ceil(count / cols));
    layout = { size, cols, rows, count, width: cols * (size + GAP) - GAP, height: rows * (size + GAP) - GAP };
    if (layout.height <= maxHeight) break;
  }
  return layout;
}

/** The top-left corner of cell `i`. */
export function cellOrigin(layout, i) {
  const step = layout.size + GAP;
  return { x: (i % layout.cols) * step, y: Math.floor(i / layout.cols) * step };
}

/** The index of the cell under a point, or -1 (gaps and empty places included). */
export function cellAt(layout, x, y) {
  const step = layout.size + GAP;
  const col = Math.floor(x / step);
  const row = Math.floor(y / step);
  if (x < 0 || y < 0 || col >= layout.cols || x - col * step >= layout.size || y - row * step >= layout.size) return -1;
  const i = row * layout.cols + col;
  return i < layout.count ? i : -1;
}

/** Indexes of the cells a rectangle (two corners, any order) touches. */
export function cellsIn(layout, x0, y0, x1, y1) {
  const step = layout.size + GAP;
  const clampCol = (x) => Math.min(layout.cols - 1, Math.max(0, Math.floor(x / step)));
  const clampRow = (y) => Math.min(layout.rows - 1, Math.max(0, Math.floor(y / step)));
  const [c0, c1] = [clampCol(Math.min(x0, x1)), clampCol(Math.max(x0, x1))];
  const [r0, r1] = [clampRow(Math.min(y0, y1)), clampRow(Math.max(y0, y1))];
  const found = [];
  for (let r = r0; r <= r1; r += 1) {
    for (let c = c0; c <= c1; c += 1) {
      const i = r * layout.cols + c;
      if (i < layout.count) found.push(i);
    }
  }
  return found;
}
