// Which dashboard shortcut a key press means, and the list the `?` overlay shows. Pure: the page
// (shortcuts.js) says where the key was pressed and acts on the answer.

/** Every shortcut as the help overlay lists it: [keys, what it does]. */
export const SHORTCUTS = [
  ["/", "put the cursor in the targets box"],
  ["Ctrl+Enter", "run the command (or copy the file) on the targets"],
  ["Esc", "close what is open: this help, then the host chart opened last, then the full output per host"],
  ["?", "show or hide this help"],
];

/**
 * The action for a keydown: "help", "targets", "run", "close", "leave-field" or null (leave the
 * key alone). `where`: {typing: in a text field, terminal: in a shell or the output terminal,
 * help: the overlay is open}. A terminal gets every key; a text field keeps `/` and `?` as
 * characters, and Esc there only leaves the field (closing nothing behind it).
 */
export function shortcutFor(event, where) {
  if (where.terminal || event.altKey || event.isComposing) return null;
  const ctrl = event.ctrlKey || event.metaKey;
  if (event.key === "Enter" && ctrl) return "run";
  if (event.key === "Escape") return where.typing && !where.help ? "leave-field" : "close";
  if (ctrl || where.typing) return null;
  if (event.key === "?") return "help";
  if (event.key === "/" && !where.help) return "targets";
  return null;
}
