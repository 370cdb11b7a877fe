"""Code runs over `control`: the candidate asks, the host runs the current shared code.

A control message is at most 4 KiB, so the source never travels in it. The candidate sends

    {"t": "run.request", "id": <its request id>, "language": "python", "sha": <16 hex>}

(a console run is `run.stdin`, the same with the person's `stdin`, at most
`MAX_CONSOLE_STDIN` bytes), where `sha` is the first 16 hex digits of the SHA-256 of the
code as the candidate sees it.
The `sync` and `control` channels are separate SCTP streams with no order between them, so
the host waits briefly (`SYNC_WAIT`) until its own copy of the code has that hash — the
candidate's last keystrokes have arrived — and then submits the shared document's current
code to its `RunService` (limits, rate limiting and queueing live there). If the code does
not match in time (the interviewer is typing too), the current shared code runs: that is
what both people see. The host answers `run.accepted` (with the run's id in the document,
where the result appears for both) or `run.refused` with the reason the candidate is shown.
The request names no tests: the host grades against its own copy of the tests it set (see
`assessiq.runs`), whatever the candidate's copy of the document says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import control

if TYPE_CHECKING:
    from ..runs import RunService
    from .session import PeerSession

__all__ = ["MAX_CONSOLE_STDIN", "SYNC_WAIT", "RunTicket", "code_sha", "console_input_size",
           "handle_run_request"]

log = logging.getLogger(__name__)

SYNC_WAIT = 2.0  # seconds the host waits for the candidate's last edits to arrive
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

control.register("run.request", {"id": str, "language": str, "sha": str})
# a console run: the same, with the standard input the person typed (it fits in a control
# message: `MAX_CONSOLE_STDIN` bytes at most, checked on both sides)
control.register("run.stdin", {"id": str, "language": str, "sha": str, "stdin": str})

MAX_CONSOLE_STDIN = 2048
"""A console run's input, in bytes as it travels: UTF-8, JSON-escaped (a quote, a backslash
or a line break counts two; a control message is at most 4 KiB)."""


def console_input_size(stdin: str) -> int | None:
    """`stdin`'s size as a `run.stdin` message carries it (see `MAX_CONSOLE_STDIN`); None
    when it is not valid text (a lone surrogate)."""
    try:
        return len(json.dumps(stdin, ensure_ascii=False).encode("utf-8")) - 2
    except UnicodeEncodeError:
        return None
control.register("run.accepted", {"id": str, "run": str})
control.register("run.refused", {"id": str, "reason": str})


def code_sha(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()[:16]


@dataclass
class RunTicket:
    """A run the candidate asked for, as far as the candidate knows."""

    id: str
    language: str
    state: str = "sent"  # sent, accepted, refused
    run_id: str | None = None  # the run's id in the shared document, once accepted
    reason: str = ""  # why it was refused


async def handle_run_request(
    session: PeerSession, runs: RunService | None, message: dict[str, Any]
) -> None:
    """Host: answer one `run.request` (never raises for a bad request)."""
    from ..runs import RunRefused

    request_id = message["id"]
    if not _ID.match(request_id):  # an honest app sends 12 hex digits
        session.refuse("control", "a run request with a malformed id",
                       request_id.encode("utf-8", "replace"))
        return
    reason = ""
    run_id = ""
    stdin = message.get("stdin", "")
    size = console_input_size(stdin)
    if runs is None:
        reason = "the host does not run code in this session"
    elif size is None or size > MAX_CONSOLE_STDIN:  # (an honest app checks both)
        reason = "a console run's input is not valid text" if size is None else \
            f"a console run's input is limited to {MAX_CONSOLE_STDIN} bytes"
        session.refuse("control", reason, stdin.encode("utf-8", "replace"))
    else:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SYNC_WAIT
        while code_sha(session.doc.code_text) != message["sha"] and loop.time() < deadline:
            await asyncio.sleep(0.05)
        try:
            run_id = runs.submit(by="candidate", language=message["language"][:32],
                                 source=session.doc.code_text, stdin=stdin)
        except RunRefused as exc:
            reason = str(exc)
    if reason:
        log.info("host: refused run request %s: %s", request_id, reason)
        await session.send_control("run.refused", id=request_id, reason=reason[:1000])
    else:
        log.info("host: run request %s accepted as run %s", request_id, run_id)
        await session.send_control("run.accepted", id=request_id, run=run_id)
