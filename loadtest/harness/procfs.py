"""What the kernel says about a process and the machine, read from /proc (Linux): CPU seconds, RSS,
listening TCP ports, the CPU model, the filesystem a path is on.

Readers only: every function reads once and returns plain numbers; ``None`` when the process is gone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
LISTEN = "0A"  # TCP state in /proc/net/tcp


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces; it ends at the last ')'
    return (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime: fields 14 and 15 of stat(5)


def rss_bytes(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except OSError:
        return None


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idle and iowait (user, nice, system, irq, softirq, steal)."""
    return _busy(Path("/proc/stat").read_text().split("\n", 1)[0])


def core_busy_seconds() -> dict[int, float]:
    """The same per core (the ``cpuN`` lines): what a pinned process shared its core with shows here."""
    return {int(line.split()[0][3:]): _busy(line) for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("cpu") and line[3:4].isdigit()}


def _busy(line: str) -> float:
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in line.split()[1:9])
    return (user + nice + system + irq + softirq + steal) * TICK_S


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on (its socket inodes matched against /proc/net/tcp and tcp6)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    inodes = set()
    for fd in fds:
        with contextlib.suppress(OSError):  # closed meanwhile (listdir's own descriptor is)
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == LISTEN and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def memory_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def filesystem(path: Path) -> str:
    """The type of the filesystem ``path`` is on (the longest mount point above it)."""
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mount, fstype, *_ = line.split()
        mount = mount.replace("\\040", " ")
        if path.resolve().is_relative_to(mount) and len(mount) > len(best):
            best, kind = mount, fstype
    return kind
