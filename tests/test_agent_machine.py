"""Disk, network and uptime in an agent's samples: which file systems count and how counters become
rates (pure), then read from this machine's real /proc and file systems, and from a machine whose
/proc and / are mounted elsewhere, as in a container."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from fleetdeck_agent import sampler
from fleetdeck_agent.disks import disk_fstypes, fullest, local_disks, parse_mounts
from fleetdeck_agent.netrate import Counters, parse_net_dev, rates
from fleetdeck_agent.settings import AgentSettings
from fleetdeck_common.messages import CpuSample, Mount
from tests.support.fakeproc import make_fake_proc

FILESYSTEMS = "".join(
    f"nodev\t{t}\n" for t in ("sysfs", "tmpfs", "proc", "overlay", "nfs4", "cifs", "zfs")
) + "".join(f"\t{t}\n" for t in ("ext4", "xfs", "squashfs", "vfat"))
MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
tmpfs /run tmpfs rw,nosuid 0 0
overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0
server:/export /mnt/nfs nfs4 rw,vers=4.2 0 0
//nas/share /mnt/smb cifs rw 0 0
/dev/loop3 /snap/core/1 squashfs ro,nodev 0 0
/dev/sdb1 /mnt/backup ext4 ro,relatime 0 0
/dev/sda1 /var/lib/docker/volumes/v ext4 rw 0 0
/dev/sdc1 /srv/my\\040data xfs rw 0 0
tank/home /home zfs rw,xattr 0 0
"""
NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls
    lo: 9000000 100 0 0 0 0 0 0 9000000 100 0 0 0 0 0 0
  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0
 wlan0: 500 5 0 0 0 0 0 0 700 7 0 0 0 0 0 0
"""


def test_only_writable_local_disks_count_each_device_once() -> None:
    disks = local_disks(parse_mounts(MOUNTS), disk_fstypes(FILESYSTEMS))
    assert [(d.device, d.mount) for d in disks] == [
        ("/dev/sda1", "/"),  # its bind mount under /var/lib/docker is the same disk
        ("tank/home", "/home"),  # ZFS registers as nodev yet is a local disk
        ("/dev/sdc1", "/srv/my data"),  # the kernel's octal escape undone
    ]


def test_the_fullest_disk_is_the_sample_value() -> None:
    mounts = [
        Mount(mount="/", used_pct=40.0, free_bytes=1),
        Mount(mount="/data", used_pct=91.5, free_bytes=2),
    ]
    assert fullest(mounts) == 91.5
    assert fullest([]) is None


def test_rates_leave_out_loopback_and_counters_that_went_down() -> None:
    before = parse_net_dev(NET_DEV)
    assert before == Counters({"eth0": 1000, "wlan0": 500}, {"eth0": 2000, "wlan0": 700})
    after = Counters({"eth0": 5000, "wlan0": 100, "eth1": 10**9}, {"eth0": 4000, "wlan0": 900})
    # eth0 +4000, wlan0 reset (nothing), eth1 new (nothing yet) over 2 s; sent +2000 and +200.
    assert rates(before, after, 2.0) == (2000.0, 1100.0)
    assert rates(before, after, 0.0) == (0.0, 0.0)


def test_old_agents_samples_still_validate_and_new_fields_are_left_out_when_unknown() -> None:
    old = '{"type":"cpu","host":"h","ts":1.0,"total":1.0,"percpu":[1.0],"mem":2.0,"load":[0,0,0]}'
    sample = CpuSample.model_validate_json(old)
    assert (sample.disk, sample.net_rx, sample.net_tx, sample.uptime) == (None, None, None, None)
    with pytest.raises(ValueError, match="disk"):
        CpuSample(host="h", ts=1.0, total=1.0, percpu=[1.0], mem=1.0, load=[0, 0, 0], disk=101.0)


def test_this_machines_disks_uptime_and_network_are_in_range() -> None:
    sampler.use_proc(None)
    unprimed = sampler.take_sample("here", 1.0)
    assert (unprimed.net_rx, unprimed.net_tx) == (None, None)  # the first reading only starts the counters
    sampler.use_proc(None)
    sampler.prime()  # as the agent does at start: its first sample has rates too
    sample = sampler.take_sample("here", 1.0)
    assert (
        sample.net_rx is not None and sample.net_rx >= 0 and sample.net_tx is not None and sample.net_tx >= 0
    )
    boot_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert sample.uptime is not None and abs(sample.uptime - boot_uptime) < 5
    mounts = sampler.mounts()
    # psutil's own list of disk partitions, read-only ones and images left out, names the same devices.
    expected = {
        p.device
        for p in psutil.disk_partitions()
        if "ro" not in p.opts.split(",") and p.fstype not in ("squashfs", "iso9660")
    }
    assert len(mounts) == len(expected)
    assert sample.disk == fullest(mounts)
    for mount in mounts:
        usage = psutil.disk_usage(mount.mount)
        assert 0 <= mount.used_pct <= 100 and abs(mount.used_pct - usage.percent) < 1
        assert mount.free_bytes > 0


def _loopback_traffic(size: int) -> None:
    """Send `size` bytes from one socket to another over 127.0.0.1."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def drain() -> None:
            conn, _ = server.accept()
            with conn:
                while conn.recv(1 << 20):
                    pass

        reader = threading.Thread(target=drain)
        reader.start()
        with socket.create_connection(("127.0.0.1", port)) as sender:
            sender.sendall(b"x" * size)
        reader.join(timeout=30)


def _loopback_bytes() -> int:
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[0])
    raise AssertionError("this machine has no lo interface")


def test_traffic_over_loopback_does_not_count() -> None:
    size = 64 << 20
    sampler.use_proc(None)
    sampler.prime()
    lo_before, started = _loopback_bytes(), time.monotonic()
    _loopback_traffic(size)
    assert _loopback_bytes() - lo_before >= size  # the traffic was real
    sample = sampler.take_sample("here", 1.0)
    elapsed = time.monotonic() - started
    assert sample.net_rx is not None and sample.net_tx is not None
    assert sample.net_rx * elapsed < size / 4 and sample.net_tx * elapsed < size / 4


def test_in_a_container_the_machines_proc_and_root_are_read(tmp_path: Path) -> None:
    other_disk = Path("/dev/shm")  # a file system other than the one tmp_path is on
    if not other_disk.is_dir() or other_disk.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    fake = make_fake_proc(tmp_path / "proc")
    root = tmp_path / "root"  # the machine's / as the container sees it
    (root / "late").mkdir(parents=True)  # a disk mounted after the container started: an empty folder
    (root / "data").symlink_to(other_disk)  # stands for a second disk seen under the root
    (fake.path / "filesystems").write_text(FILESYSTEMS)
    (fake.path / "1" / "net").mkdir(parents=True)
    (fake.path / "1" / "net" / "dev").write_text(NET_DEV)
    (fake.path / "1" / "mounts").write_text(
        "/dev/vda1 / ext4 rw 0 0\n/dev/vdb1 /data xfs rw 0 0\n/dev/vdd1 /late ext4 rw 0 0\n"
        "/dev/vdc1 /gone ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n"
    )
    try:
        sampler.use_proc(fake.path, root)
        sampler.prime()
        (fake.path / "1" / "net" / "dev").write_text(NET_DEV.replace(" 1000 10", " 901000 10"))
        sample = sampler.take_sample("box", 1.0)
        mounts = sampler.mounts()
    finally:
        sampler.use_proc(None)
    # /gone is not there and /late is the root's own disk again: both left out.
    assert sorted(m.mount for m in mounts) == ["/", "/data"]
    expected = max(psutil.disk_usage(str(tmp_path)).percent, psutil.disk_usage(str(other_disk)).percent)
    assert sample.disk is not None and abs(sample.disk - expected) < 0.5
    assert sample.net_rx is not None and sample.net_rx > 0 and sample.net_tx == 0.0
    assert sample.uptime is not None and abs(sample.uptime - (time.time() - 1_700_000_000)) < 5  # btime


def test_the_rootfs_setting_is_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETDECK_ROOTFS_PATH", raising=False)
    assert AgentSettings(redis_url="memory://").rootfs_path is None
    monkeypatch.setenv("FLEETDECK_ROOTFS_PATH", "/host/root")
    assert AgentSettings(redis_url="memory://").rootfs_path == Path("/host/root")
