// The vendored libraries (web/vendor/, from npm) are UMD bundles that define globals; importing them
// here runs them once, and the rest of the page imports the names from this module.
import "../vendor/echarts.min.js";
import "../vendor/xterm.js";
import "../vendor/addon-fit.js";

export const echarts = globalThis.echarts;
export const Terminal = globalThis.Terminal;
export const FitAddon = globalThis.FitAddon.FitAddon;
