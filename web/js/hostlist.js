// The host list: search, a filter per label, sorting by CPU, memory or name, under column headers
// that give the units (index.html). Virtualised: only the rows in view exist (a few dozen
// elements, reused), whatever the size of the fleet.
import { $, h, onNextFrame, onResize } from "./dom.js";
import { queryHosts, labelIndex, SORTS } from "./hostquery.js";
import { cpuColor, percent, load, ago } from "./format.js";
import { openHost, togglePin } from "./watched.js";

const ROW = 30; // px, as in style.css (.host-row)
const OVERSCAN = 6;

export function hostList(store) {
  const scroller = $("host-rows");
  const inner = $("host-rows-inner");
  const head = $("host-head"); // column headers with units, sticky over the rows
  const filters = $("label-filters");
  const rows = []; // reused row elements
  let listed = [];

  // ---------------------------------------------------------------- query controls
  const sort = $("host-sort");
  sort.replaceChildren(...Object.entries(SORTS).map(([value, label]) => new Option("Sort by " + label, value)));
  sort.value = store.get("query").sort;
  const setQuery = (patch) => store.set("query", { ...store.get("query"), ...patch });
  sort.addEventListener("change", () => setQuery({ sort: sort.value }));
  $("host-search").addEventListener("input", (event) => setQuery({ search: event.target.value }));
  filters.addEventListener("change", (event) => {
    const select = event.target.closest("select[data-label]");
    if (select) setQuery({ labels: { ...store.get("query").labels, [select.dataset.label]: select.value } });
  });

  function buildFilters() {
    const chosen = store.get("query").labels;
    filters.replaceChildren(...[...labelIndex(store.get("hosts"))].map(([key, values]) => {
      // A value chosen before its last host went away stays, so the filter shown is the one applied.
      if (chosen[key] && !values.has(chosen[key])) values.set(chosen[key], 0);
      const select = h("select", { dataset: { label: key }, "aria-label": "filter by " + key },
        new Option(key + ": any", ""),
        [...values].map(([value, count]) => new Option(key + "=" + value + " (" + count + ")", value)));
      select.value = chosen[key] || "";
      return select;
    }));
  }

  // ---------------------------------------------------------------- the list itself
  // New numbers every second would reorder the rows under the pointer, and a click meant for one
  // host would land on another: while the pointer is on the list, only a new query reorders it.
  let reorder = true;
  const relist = onNextFrame(() => {
    if (!reorder && scroller.matches(":hover")) { render(); return; }
    reorder = false;
    listed = queryHosts(store.get("hosts"), store.get("query")).map((host) => host.host);
    store.set("listed", listed);
    const total = store.get("hosts").size;
    $("host-count").textContent = listed.length === total ? total + " hosts" : listed.length + " of " + total + " hosts";
    inner.style.height = listed.length * ROW + "px";
    $("host-rows-empty").hidden = listed.length > 0;
    $("host-rows-empty").textContent = total ? "No host matches the search and filters." : "No hosts yet: waiting for agents…";
    render();
  });

  function makeRow() {
    const row = h("div", { class: "host-row", role: "listitem" },
      h("input", { type: "checkbox", class: "pick", "aria-label": "select" }),
      h("span", { class: "dot" }),
      h("button", { type: "button", class: "name link", title: "open its chart" }),
      h("span", { class: "cpu" }, h("span", { class: "bar" }), h("span", { class: "value" })),
      h("span", { class: "mem" }),
      h("span", { class: "load" }),
      h("span", { class: "labels" }),
      h("button", { type: "button", class: "pin", title: "pin: keep its chart open" }, "pin"));
    inner.append(row);
    return row;
  }

  function fill(row, host, selection, pinned) {
    row.dataset.host = host.host;
    row.classList.toggle("offline", !host.online);
    row.classList.toggle("selected", selection.has(host.host));
    const [pick, , name, cpu, mem, ld, labels, pin] = row.children;
    pick.checked = selection.has(host.host);
    name.textContent = host.host;
    if (host.online) {
      cpu.lastChild.textContent = percent(host.total);
      cpu.firstChild.style.width = (host.total || 0) + "%";
      cpu.firstChild.style.background = host.total == null ? "" : cpuColor(host.total);
      labels.textContent = Object.entries(host.labels).map(([k, v]) => k + "=" + v).join(" ");
    } else {
      cpu.lastChild.textContent = "offline";
      cpu.firstChild.style.width = "0";
      labels.textContent = "last seen " + ago(host.lastSeen);
    }
    mem.textContent = host.online ? percent(host.mem) : "–";
    ld.textContent = host.online ? load(host.load1) : "–";
    pin.classList.toggle("on", pinned.has(host.host));
    pin.setAttribute("aria-pressed", String(pinned.has(host.host)));
  }

  function render() {
    const hosts = store.get("hosts");
    const selection = store.get("selection");
    const { pinned } = store.get("watched");
    const top = Math.max(0, scroller.scrollTop - head.offsetHeight); // the rows start under the headers
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(listed.length, Math.ceil((top + scroller.clientHeight) / ROW) + OVERSCAN);
    let used = 0;
    for (let i = first; i < last; i += 1) {
      const host = hosts.get(listed[i]);
      if (!host) continue;
      const row = rows[used] || (rows[used] = makeRow());
      row.hidden = false;
      row.style.transform = "translateY(" + i * ROW + "px)";
      fill(row, host, selection, pinned);
      used += 1;
    }
    for (let i = used; i < rows.length; i += 1) rows[i].hidden = true;
  }
  const rerender = onNextFrame(render);

  scroller.addEventListener("scroll", rerender, { passive: true });
  onResize(scroller, rerender);

  inner.addEventListener("click", (event) => {
    const row = event.target.closest(".host-row");
    if (!row) return;
    const name = row.dataset.host;
    if (event.target.matches(".pick")) {
      const before = store.get("selection");
      const next = new Set(before);
      if (event.target.checked) next.add(name); else next.delete(name);
      store.set("selection", next, before);
    } else if (event.target.matches(".pin")) {
      togglePin(store, name);
    } else if (event.target.matches(".name")) {
      openHost(store, name);
    }
  });

  store.subscribe("hosts", (hosts, change) => {
    if (change.labels) buildFilters();
    if (change.added) reorder = true;
    relist();
  });
  store.subscribe("query", () => { reorder = true; relist(); });
  store.subscribe("selection", rerender);
  store.subscribe("watched", rerender);
}
