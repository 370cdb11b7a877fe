"""Small asyncio helpers the layers above share."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["first_completed"]


async def first_completed(*waits: Coroutine[Any, Any, Any]) -> None:
    """Return when the first of these coroutines does (the others are cancelled)."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
