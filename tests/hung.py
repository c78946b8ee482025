"""What a test that hung was waiting for: pytest-timeout fails it with the main thread's stack, which in an
asyncio test is only the event loop's ``select``; the report gains every pending task's stack as well."""

from __future__ import annotations

import asyncio
import gc
import io


def pending_tasks() -> str:
    out = io.StringIO()
    tasks = [t for t in gc.get_objects() if isinstance(t, asyncio.Task) and not t.done()]
    for task in tasks:
        out.write(f"--- {task!r}\n")
        task.print_stack(limit=20, file=out)
    return out.getvalue() or "(none)"
