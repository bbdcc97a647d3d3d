import { test } from "node:test";
import assert from "node:assert/strict";
import { shortcutFor, SHORTCUTS } from "../js/keys.js";

const key = (k, mods = {}) => ({ key: k, ctrlKey: false, metaKey: false, altKey: false, isComposing: false, ...mods });
const page = { typing: false, terminal: false, help: false };

test("each shortcut outside a text field", () => {
  assert.equal(shortcutFor(key("/"), page), "targets");
  assert.equal(shortcutFor(key("?"), page), "help");
  assert.equal(shortcutFor(key("Escape"), page), "close");
  assert.equal(shortcutFor(key("Enter", { ctrlKey: true }), page), "run");
  assert.equal(shortcutFor(key("Enter", { metaKey: true }), page), "run");
  assert.equal(shortcutFor(key("Enter"), page), null);
  assert.equal(shortcutFor(key("a"), page), null);
  assert.equal(shortcutFor(key("/", { ctrlKey: true }), page), null);
});

test("a text field keeps / and ? as characters; Ctrl+Enter runs, Esc leaves the field", () => {
  const typing = { ...page, typing: true };
  assert.equal(shortcutFor(key("/"), typing), null);
  assert.equal(shortcutFor(key("?"), typing), null);
  assert.equal(shortcutFor(key("Enter", { ctrlKey: true }), typing), "run");
  assert.equal(shortcutFor(key("Escape"), typing), "leave-field");
  assert.equal(shortcutFor(key("Escape"), { ...typing, help: true }), "close");
});

test("a terminal gets every key, and / does nothing while the help is open", () => {
  const terminal = { ...page, terminal: true };
  for (const k of [key("/"), key("?"), key("Escape"), key("Enter", { ctrlKey: true })]) {
    assert.equal(shortcutFor(k, terminal), null);
  }
  assert.equal(shortcutFor(key("/"), { ...page, help: true }), null);
  assert.equal(shortcutFor(key("?"), { ...page, help: true }), "help");
  assert.equal(shortcutFor(key("Enter", { ctrlKey: true, isComposing: true }), page), null);
});

test("the help lists every shortcut", () => {
  assert.deepEqual(SHORTCUTS.map(([keys]) => keys), ["/", "Ctrl+Enter", "Esc", "?"]);
});
