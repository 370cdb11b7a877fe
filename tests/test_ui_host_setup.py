"""The interviewer's setup and end screens with NiceGUI's simulated `User` (no browser), on a
real host (peer layer, embedded signaling on 127.0.0.1, the session store; no camera or
microphone): the language follows the problem, and a failed seal is shown and can be retried."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from nicegui.testing.user_simulation import user_simulation

from assessiq.core.errors import StoreError
from assessiq.core.record import SessionRecord
from assessiq.core.seal import seal
from assessiq.room.call import plan_call
from assessiq.room.host import HostController
from assessiq.room.problems import BANK, parse_problem
from assessiq.ui.app import AppState, register_pages
from assessiq.ui.editor import SharedEditor
from tests.peer_helpers import eventually

pytestmark = pytest.mark.timeout(90)

JS_PROBLEM = """# Double it
Read a number and print twice its value.

## Starter code
```js
const lines = require("fs").readFileSync(0, "utf8");
console.log(lines);
```

## Public tests
### two
```input
2
```
```output
4
```
"""


@pytest.fixture
async def app_state(data_dir: str) -> AsyncIterator[tuple[AppState, User]]:
    state = AppState()
    state.calls["host"] = plan_call("host", camera="none", microphone="none", speaker=None)
    state.problem_file = parse_problem(JS_PROBLEM)
    async with user_simulation() as user:
        register_pages(state, ("host",))
        try:
            yield state, user
        finally:
            if state.host is not None:
                await state.host.close()


def _select(user: User, marker: str) -> ui.select:
    select = user.find(marker=marker).elements.pop()
    assert isinstance(select, ui.select)
    return select


async def _create(state: AppState, user: User) -> HostController:
    """Press "Create session" and wait for the session to be waiting for its candidate."""
    user.find(marker="create").click()
    await eventually(lambda: state.host is not None)
    await user.should_see("Waiting for the candidate", retries=100)
    assert state.host is not None
    return state.host


async def _interview(state: AppState, user: User, problem: str | None = None
                     ) -> HostController:
    """Create a session (with `problem` chosen, if given), start it, and wait for the lobby
    to move on to the interviewer's interview page (it follows the phase's change event;
    opening the page here too would race that navigation for the simulated user)."""
    await user.open(f"/{state.token}/host")
    await user.should_see("Create a session", retries=100)
    if problem is not None:
        _select(user, "problem").set_value(problem)
    host = await _create(state, user)
    host.set_phase("interview")
    await user.should_see(marker="end", retries=100)
    return host


async def test_the_language_starts_from_the_problem_file(
        app_state: tuple[AppState, User]) -> None:
    state, user = app_state
    await user.open(f"/{state.token}/host")
    await user.should_see("Create a session", retries=100)
    problem, language = _select(user, "problem"), _select(user, "language")
    # The --problem file comes first, and its starter is JavaScript (fenced ```js).
    assert problem.value == "Double it" and language.value == "javascript"
    # The language follows the problem chosen, both ways.
    problem.set_value("Sum of numbers")
    assert language.value == "python"
    problem.set_value("Double it")
    assert language.value == "javascript"
    await user.should_not_see("starts with a one-line comment")
    doc = (await _create(state, user)).doc
    assert doc.language == "javascript"
    assert state.problem_file is not None
    assert doc.code_text == state.problem_file.starter
    assert doc.code_text.startswith('const lines = require("fs")')


async def test_another_language_does_not_keep_the_python_starter(
        app_state: tuple[AppState, User]) -> None:
    state, user = app_state
    await user.open(f"/{state.token}/host")
    await user.should_see("Create a session", retries=100)
    _select(user, "problem").set_value("Sum of numbers")  # a Python starter in the bank
    _select(user, "language").set_value("java")
    await user.should_see("The problem's starter code is python; in java the editor starts "
                          "with a one-line comment instead.", retries=100)
    doc = (await _create(state, user)).doc
    assert doc.language == "java"
    assert doc.code_text == ("// Your Java solution: read standard input, print to standard "
                             "output.\n")
    assert BANK["Sum of numbers"].starter not in doc.code_text


async def test_a_failed_seal_is_shown_and_can_be_tried_again(
        app_state: tuple[AppState, User], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    state, user = app_state
    host = await _interview(state, user)
    # An honest session (here: no candidate at all) has nothing refused.
    await user.should_see("Refused from the candidate's app (0)", retries=100)
    await user.should_see(marker="refusals-none", content="none", retries=100)

    calls: list[int] = []

    def failing_seal(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("cannot write the session file: No space left on device")
        return seal(*args, **kwargs)

    # what Host.end() calls (the package re-exports names over its submodule's, so by module)
    monkeypatch.setattr(importlib.import_module("assessiq.peer.host"), "seal", failing_seal)
    # Sealing is final, so "End and seal" asks first; keeping on interviewing seals nothing.
    user.find(marker="end").click()
    await user.should_see("End the interview and seal the record?", retries=100)
    dialog = next(e for e in user.find(kind=ui.dialog).elements)
    assert dialog.value  # open, asking
    user.find(marker="end-cancel").click()
    await eventually(lambda: not dialog.value, what="the dialog closed")
    # nothing was sealed or started: End and seal ran only on the confirming button
    assert host.ended is None and calls == [] and host.doc.phase == "interview"
    end_button = user.find(marker="end").elements.pop()
    assert isinstance(end_button, ui.button) and end_button.enabled
    user.find(marker="end").click()
    user.find(marker="end-confirm").click()
    await user.should_see("The session could not be sealed: cannot write the session file: "
                          "No space left on device. Fix the cause", retries=200)
    assert host.ended is None and calls == [1]
    end_button = user.find(marker="end").elements.pop()
    assert isinstance(end_button, ui.button) and end_button.enabled  # the host can retry
    assert any("could not be sealed" in r.getMessage() and r.levelname == "ERROR"
               for r in caplog.records)
    # Second try: sealing works now; the session is sealed and verifies.
    user.find(marker="end").click()
    user.find(marker="end-confirm").click()
    await user.should_see("The session is sealed.", retries=200)
    assert calls == [1, 1]
    assert host.ended is not None and host.ended.verdict.valid
    record = SessionRecord.load(host.ended.session_file)
    assert [row["kind"] for row in record.private].count("score") == 1  # kept once
    assert "## Refused from the candidate's app (0)\n\n- none\n" in \
        host.ended.report_md.read_text(encoding="utf-8")


async def test_a_launched_sandbox_shows_its_progress_while_the_session_starts(
        app_state: tuple[AppState, User], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """`[sandbox] backend = "piston", launch = true`: the first image pull and Piston's start
    take minutes, so "Create session" says what is happening (the launcher against the
    docker SDK stand-in and a Piston double on 127.0.0.1 that answers 1.5 s after it is
    started)."""
    import docker
    from sandbox_fixtures.fake_docker import FakeDocker, layer_events
    from sandbox_fixtures.piston_double import RunningDouble

    from assessiq.config import AppConfig
    from sandbox import LocalBackend
    from sandbox.piston_launcher import IMAGE

    state, user = app_state
    piston = RunningDouble(LocalBackend())
    try:
        piston.double.only_runtimes = {"python"}
        fake = FakeDocker(on_start=lambda: piston.start_later(1.5))
        fake.api.pull_events = layer_events()
        monkeypatch.setattr(docker, "from_env", lambda **kw: fake)
        state.app_config = AppConfig(sandbox_backend="piston", piston_url=piston.url,
                                     piston_launch=True)
        caplog.set_level("INFO", logger="assessiq.ui.host_views")
        await user.open(f"/{state.token}/host")
        await user.should_see("Create a session", retries=100)
        user.find(marker="create").click()
        await user.should_see(f"starting… waiting for Piston at {piston.url}", retries=100)
        host = await _create(state, user)
        assert fake.api.pulls == [(IMAGE, "latest")]
        assert f"sandbox: pulled {IMAGE}:latest (3 layers, 120 MB downloaded)" in caplog.text
        assert host.host.runs is not None and host.host.runs.backend_error is None
    finally:
        piston.__exit__(None, None, None)


async def test_the_interviewer_switches_the_language_during_the_interview(
        app_state: tuple[AppState, User]) -> None:
    state, user = app_state
    host = await _interview(state, user, "Sum of numbers")
    editor = user.find(marker="editor").elements.pop()
    assert isinstance(editor, SharedEditor) and editor.language == "python"
    # Untouched starter code: the new language's starter (a comment line) replaces it.
    _select(user, "language-switch").set_value("java")
    await eventually(lambda: editor.language == "java", what="the editor follows")
    assert host.doc.language == "java"
    assert host.doc.code_text == ("// Your Java solution: read standard input, print to "
                                  "standard output.\n")
    # Code someone wrote is kept, under a comment line in the new language's syntax.
    written = "class Main { public static void main(String[] a) {} }\n"
    host.doc.set_code(written, origin="candidate")
    _select(user, "language-switch").set_value("python")
    await eventually(lambda: editor.language == "python", what="the editor follows back")
    assert host.doc.code_text == ("# The interviewer switched the language from Java to "
                                  "Python; the code below was written in Java.\n" + written)
    # Both switches are the editor's text in the sealed metadata, not anyone's typing.
    marks = host.host.store.meta()["generated_code"]
    assert [m["what"] for m in marks] == ["starter", "language switch", "language switch"]
    with pytest.raises(ValueError, match="unknown language"):
        host.switch_language("cobol")
    assert host.switch_language("python") is False  # already: nothing changes


async def test_theme_and_font_size(app_state: tuple[AppState, User]) -> None:
    state, user = app_state
    await _interview(state, user)
    dark = user.find(kind=ui.dark_mode).elements.pop()
    assert isinstance(dark, ui.dark_mode) and dark.value is None  # follows the system
    seen = []
    for _ in range(3):
        user.find(marker="theme").click()
        seen.append(dark.value)
    assert seen == [True, False, None]
    editor = user.find(marker="editor").elements.pop()
    assert editor._style.get("font-size") == "14px"
    _select(user, "font-size").set_value(18)
    assert editor._style.get("font-size") == "18px"
