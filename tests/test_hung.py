import asyncio

from tests.hung import pending_tasks


async def test_a_pending_task_is_listed_with_where_it_waits():
    async def waits_for_ever() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(waits_for_ever(), name="the waiter")
    await asyncio.sleep(0)
    text = pending_tasks()
    task.cancel()
    assert "the waiter" in text and "in waits_for_ever" in text
