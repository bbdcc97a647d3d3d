"""Which mounted file systems are the machine's local disks, and how full each one is.

Local means a file system the kernel lists without `nodev` in /proc/filesystems (so network,
pseudo and overlay file systems — nfs, cifs, tmpfs, overlay, proc, sysfs… — are out), that is
not a read-only image (squashfs, iso9660…) and is not mounted read-only. A device mounted at
several places (bind mounts) counts once, at its shortest mount point, and so does a file system
reached under two mount points (see `DiskReader.read`).

In a container the machine's mount table is `<proc>/1/mounts` and its file systems are reached
under the folder its / is mounted at (FLEETDECK_ROOTFS_PATH); without that setting the agent
measures the file systems it sees itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from fleetdeck_common.messages import Mount

MAX_MOUNTS = 32  # a heartbeat stays small on a machine with hundreds of mounts
_READ_ONLY_IMAGES = frozenset({"squashfs", "iso9660", "udf", "erofs", "cramfs", "romfs"})
_NODEV_BUT_LOCAL = frozenset({"zfs"})  # ZFS registers as nodev, yet its datasets are local disks


@dataclass(frozen=True)
class MountEntry:
    """One line of a mount table."""

    device: str
    mount: str
    fstype: str
    options: frozenset[str]


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as octal escapes (\040…).
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def parse_mounts(text: str) -> list[MountEntry]:
    """The entries of a /proc/<pid>/mounts file."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            device, mount, fstype, options = fields[:4]
            entries.append(
                MountEntry(_unescape(device), _unescape(mount), fstype, frozenset(options.split(",")))
            )
    return entries


def disk_fstypes(filesystems: str) -> frozenset[str]:
    """The file system types of /proc/filesystems that live on a block device."""
    types = set()
    for line in filesystems.splitlines():
        fields = line.split()
        if len(fields) == 1:
            types.add(fields[0])
        elif len(fields) == 2 and fields[0] == "nodev" and fields[1] in _NODEV_BUT_LOCAL:
            types.add(fields[1])
    return frozenset(types - _READ_ONLY_IMAGES)


def local_disks(entries: list[MountEntry], fstypes: frozenset[str]) -> list[MountEntry]:
    """The writable local disks among `entries`, each device once (its shortest mount point)."""
    chosen: dict[str, MountEntry] = {}
    for entry in entries:
        if entry.fstype not in fstypes or "ro" in entry.options or entry.device in ("", "none"):
            continue
        known = chosen.get(entry.device)
        if known is None or len(entry.mount) < len(known.mount):
            chosen[entry.device] = entry
    return sorted(chosen.values(), key=lambda e: e.mount)


def fullest(mounts: list[Mount]) -> float | None:
    """% used of the fullest one, None if there is none."""
    return max((m.used_pct for m in mounts), default=None)


class DiskReader:
    """Reads the machine's mount table and each local disk's usage."""

    def __init__(self, proc_path: Path | None, rootfs_path: Path | None) -> None:
        proc = proc_path or Path("/proc")
        self._filesystems = proc / "filesystems"
        self._table = proc / "1" / "mounts" if rootfs_path is not None else Path("/proc/self/mounts")
        self._root = rootfs_path

    def _reach(self, mount: str) -> str:
        return str(self._root / mount.lstrip("/")) if self._root is not None else mount

    def read(self) -> list[Mount]:
        """Every local disk, fullest first; one that cannot be measured now is left out."""
        try:
            fstypes = disk_fstypes(self._filesystems.read_text())
            entries = local_disks(parse_mounts(self._table.read_text()), fstypes)
        except OSError:
            return []
        mounts = []
        seen: set[int] = set()
        for entry in sorted(entries, key=lambda e: len(e.mount)):
            path = self._reach(entry.mount)
            try:
                device = os.stat(path).st_dev
                usage = psutil.disk_usage(path)
            except OSError:  # unmounted since, or not reachable from here
                continue
            if device in seen:
                # Under FLEETDECK_ROOTFS_PATH a disk mounted after the container started is only
                # the empty folder on the disk above it: not measured twice under another name.
                continue
            seen.add(device)
            if usage.total > 0:
                mounts.append(
                    Mount(mount=entry.mount, used_pct=round(usage.percent, 1), free_bytes=usage.free)
                )
        mounts.sort(key=lambda m: (-m.used_pct, m.mount))
        return mounts[:MAX_MOUNTS]
