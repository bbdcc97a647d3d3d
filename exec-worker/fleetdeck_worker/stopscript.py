"""The shell text that makes a command stoppable: the wrapper that names its process group, and
the script that ends that group (see ssh.py's module doc). Pure."""

from __future__ import annotations

GROUP_LINE = b"fleetdeck-pgid "


def wrap_command(command: str) -> str:
    """The command as sent: its shell first names its process group on stderr (see the module doc)."""
    return f"printf '{GROUP_LINE.decode()}%s\\n' \"$$\" >&2; {command}"


_STOP_SCRIPT = r"""nap() { sleep 0.05 2>/dev/null || sleep 1; }
empty() { ! kill -s 0 -- "-$g" 2>/dev/null; }
alive() {
  empty && return 1
  s=$(ps -A -o pgid= -o stat= 2>/dev/null) || return 0
  printf '%s\n' "$s" | awk -v g="$g" '$1 == g && $2 !~ /^Z/ { n++ } END { exit n ? 0 : 1 }'
}
if kill -s 0 -- "-$p" 2>/dev/null; then g=$p
elif kill -s 0 "$p" 2>/dev/null; then
  g=$(ps -o pgid= -p "$p" 2>/dev/null | tr -d ' ')
  case $g in ''|*[!0-9]*|0|1) echo unknown; exit 0;; esac
else echo gone; exit 0
fi
alive || { echo gone; exit 0; }
kill -s TERM -- "-$g" 2>/dev/null
kill -s CONT -- "-$g" 2>/dev/null
n=0
while [ $n -lt 10 ]; do nap; alive || { echo term; exit 0; }; n=$((n+1)); done
kill -s KILL -- "-$g" 2>/dev/null
n=0
while alive; do [ $n -lt 20 ] || { echo left; exit 0; }; nap; n=$((n+1)); done
echo kill
"""


def stop_script(pid: int) -> str:
    """Shell that ends process group `pid` (TERM, 0.5 s, KILL) and prints what it found: `gone`
    (nothing left to stop), `term`, `kill`, `left` (a process outlived SIGKILL for 1 s) or
    `unknown`. Zombies do not count: they have ended and wait for their parent to reap them."""
    return f"p={pid}\n{_STOP_SCRIPT}"
