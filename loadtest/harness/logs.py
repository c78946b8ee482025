"""Warnings and errors in a run's logs (Parley's and nats-server's), for the record: counts per file
and a few distinct lines each, so a figure is never read without knowing the cluster complained."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

ISSUE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|\[(ERR|WRN|FTL)\]")
# timestamps and numbers vary between otherwise equal lines
STAMP = re.compile(r"^\S+ \S+ |^\[\d+\] \S+ \S+ |\b\d+\b")
SAMPLES = 5


def scan_logs(logs: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for log in sorted(logs.glob("*.log")):
        counts: Counter[str] = Counter()
        samples: dict[str, str] = {}
        for line in log.read_text(errors="replace").splitlines():
            m = ISSUE.search(line)
            if not m:
                continue
            counts[m.group(0)] += 1
            key = STAMP.sub("#", line)[:160]
            if key not in samples and len(samples) < SAMPLES:
                samples[key] = line[:300]
        if counts:
            out[log.name] = {"counts": dict(counts), "samples": list(samples.values())}
    return out
