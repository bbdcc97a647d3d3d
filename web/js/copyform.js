// The "Copy a file" tab beside "Run a command": pick or drop a file, a destination and a mode; the
// file goes to the gateway (POST /api/files), then a copy job runs and its results show in the
// run panel's terminal like any job's.
import { $ } from "./dom.js";

export function copyForm(store, exec) {
  let picked = null;

  function mode(copying) {
    $("copy-form").hidden = !copying;
    $("exec-form").hidden = copying;
    $("mode-copy").setAttribute("aria-selected", String(copying));
    $("mode-run").setAttribute("aria-selected", String(!copying));
    if (copying && !$("copy-targets").value) $("copy-targets").value = $("exec-targets").value;
    if (!copying && !$("exec-targets").value) $("exec-targets").value = $("copy-targets").value;
  }
  $("mode-run").addEventListener("click", () => mode(false));
  $("mode-copy").addEventListener("click", () => mode(true));

  function note(text, bad = false) {
    $("copy-note").textContent = text;
    $("copy-note").classList.toggle("error", bad);
  }
  function pick(file) {
    picked = file || null;
    $("copy-file-name").textContent = picked ? picked.name + " (" + picked.size + " bytes)" : "Pick a file, or drop one here";
    if (picked && !$("copy-dest").value) $("copy-dest").placeholder = "/path/on/each/host/" + picked.name;
    note("");
  }
  $("copy-file").addEventListener("change", () => pick($("copy-file").files[0]));
  const drop = $("copy-drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    pick(event.dataTransfer.files[0]);
  });

  $("copy-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!picked) return note("Pick a file to copy first.", true);
    const targets = $("copy-targets").value.trim();
    const dest = $("copy-dest").value.trim();
    const fileMode = $("copy-mode").value.trim() || "0644";
    if (!dest.startsWith("/")) return note("The destination must be an absolute path, like /etc/app/app.conf.", true);
    $("copy-run").disabled = true;
    note("Uploading " + picked.name + "…");
    try {
      const response = await fetch("/api/files", { method: "POST", body: picked, credentials: "same-origin" });
      const body = await response.json().catch(() => ({}));
      if (response.status !== 201) return note("Upload refused (" + response.status + "): " + (body.message || "no reason given"), true);
      note("Uploaded " + picked.name + " (" + body.size + " bytes); copying to " + dest + ".");
      const timeout = Number($("exec-timeout").value) || store.get("protocol").limits.default_timeout_seconds;
      exec.start(targets, "", timeout, { file: body.file, dest, mode: fileMode });
    } catch (error) {
      note("Upload failed: " + error.message, true);
    } finally {
      $("copy-run").disabled = $("exec-run").disabled;
    }
  });
}
