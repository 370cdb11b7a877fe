"""The apps' logic without pages: signal debouncing, problems, runs, replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from assessiq.core.document import SharedDoc
from assessiq.core.policy import Policy
from assessiq.room.candidate import BrowserSignals
from assessiq.room.problems import ProblemError, TestCase, load_problem, parse_problem


def test_signals_are_debounced_per_policy() -> None:
    signals = BrowserSignals(Policy.default())  # tab.hidden: min_duration 2 s
    signals.begin("tab.hidden", 100.0)
    assert signals.due(101.0) == []
    assert signals.finish("tab.hidden", 101.5) == []  # a blip: nothing is sent
    signals.begin("tab.hidden", 200.0)
    started = signals.due(202.5)
    assert [d["phase"] for _, d in started] == ["start"] and started[0][1]["start"] == 200.0
    assert signals.due(203.0) == []  # sent once
    ended = signals.finish("tab.hidden", 204.0)
    assert ended[0][1]["phase"] == "end" and ended[0][1]["duration"] == 4.0
    assert signals.instant("paste", {"chars": 5}, 10.0) == [("paste", {"phase": "instant",
                                                                       "chars": 5})]
    assert signals.instant("paste", {"chars": 5}, 10.5) == []  # a burst counts once


def test_problem_markdown_parses_public_and_hidden_tests(tmp_path: Path) -> None:
    text = ("# Add\nAdd two numbers.\n\n## Starter code\n```python\nprint(0)\n```\n\n"
            "## Public tests\n### small\n```input\n1 2\n```\n```output\n3\n```\n\n"
            "## Hidden tests\n### big\n```input\n5 5\n```\n```output\n10\n```\n")
    p = parse_problem(text)
    assert p.title == "Add" and p.starter == "print(0)\n" and p.language == "python"
    assert p.public == (TestCase("small", "1 2\n", "3\n"),)
    assert p.hidden == (TestCase("big", "5 5\n", "10\n"),)
    assert "Hidden" not in p.statement and "5 5" not in p.statement
    path = tmp_path / "p.md"
    path.write_text(text)
    assert load_problem(path) == p
    with pytest.raises(ProblemError, match="Title"):
        parse_problem("no title")
    with pytest.raises(ProblemError, match="needs an ```input"):
        parse_problem("# T\n## Public tests\n### a\n```input\nx\n```\n")
    with pytest.raises(ProblemError, match="cannot read"):
        load_problem(tmp_path / "missing.md")


def test_replay_shows_the_code_as_it_was_typed(tmp_path: Path) -> None:
    from assessiq.core.record import SessionRecord
    from assessiq.core.store import SessionStore
    from assessiq.room.replay import Replay

    store = SessionStore.create(tmp_path / "s.aiq", {"session": "s1", "created": 1000.0})
    doc = SharedDoc()
    updates: list[bytes] = []
    unsubscribe = doc.observe_updates(lambda u, _o: updates.append(u))
    text = ""
    for i, ch in enumerate("héllo 😀 世界" * 30):  # > one checkpoint of updates
        doc.insert_code(len(text), ch)
        text += ch
        store.record_update(updates[-1], origin="candidate", t=1000.0 + i)
    unsubscribe()
    store.add_private("note", {"text": "good start"}, t=1005.5)
    store.flush()
    replay = Replay(SessionRecord.from_store(store))
    store.close()
    assert not replay.verdict.valid  # not sealed: the viewer says so
    assert replay.code_at(999.0) == ""
    assert replay.code_at(1000.0) == "h"
    assert replay.code_at(1006.0) == text[:7]
    assert replay.code_at(1000.0 + 250) == text[:251]
    assert replay.code_at(replay.end) == text
    assert [i.text for i in replay.items_until(1006.0)] == ["good start"]


def test_a_synthetic_camera_only_when_asked_for_and_it_says_so() -> None:
    from assessiq.room.call import describe_problems, plan_call

    # No silent stand-in: "auto" with no camera means no video (and camera.off is signed).
    assert not plan_call("candidate").synthetic and plan_call("candidate").config.camera == "auto"
    assert plan_call("candidate", camera="none").config.camera is None
    host = plan_call("host", camera="synthetic")
    cand = plan_call("candidate", camera="synthetic", scenes=[(5, "present"), (5, "absent")])
    assert host.synthetic and host.config.camera == "synthetic" and "Synthetic camera" in host.note
    assert host.config.tap_rate is None  # the interviewer is not proctored
    assert cand.config.tap_rate and cand.scenes is not None
    assert [p.scene.value for p in cand.scenes.plants()] == ["present", "absent"]
    # a real device asked for by name is kept (it fails at the call, with a problem line)
    assert not plan_call("host", camera="/dev/video9").synthetic
    lines = describe_problems(["no microphone found; the call goes on without audio",
                               "no camera found at /dev/video9; the call goes on without video",
                               "no audio output device found; the other side is not played"])
    assert lines[0].startswith("No camera found — the interview continues without video")
    assert lines[1].startswith("No microphone") and lines[2].startswith("No speaker")


def test_each_media_problem_is_worded_as_what_it_is() -> None:
    """A busy camera or a refused permission is not "no camera found" (the media layer's own
    messages, as `assessiq.media.devices` and `playback` word them)."""
    from assessiq.room.call import describe_problems

    video = "; the call goes on without video from this side"
    audio = "; the call goes on without audio from this side"
    lines = describe_problems([
        "microphone busy: hw:1,0 is in use by another app; close it and try again" + audio,
        "camera busy: /dev/video0 is in use by another app; close it and try again" + video,
        "microphone hw:1,0: permission denied (allow access to the microphone in your "
        "system settings)" + audio,
        "camera /dev/video0: permission denied (allow access to the camera in your system "
        "settings)" + video,
        "no camera found on this machine" + video,
        "the camera stopped sending frames; sending black instead",
        "no known camera input for platform 'plan9'" + video,
        "no microphone found at hw:9,0" + audio,
        "the microphone stopped sending audio; sending silence instead",
        "audio output default cannot be opened: Error opening RawOutputStream: Device "
        "unavailable [PaErrorCode -9985]",
        "no audio output device found; the other side is not played",
        "no audio output: the PortAudio library is missing (install libportaudio2)",
    ])
    heads = [line.split(" (", 1)[0] for line in lines]
    assert heads == [
        # the camera's lines first, in their order
        "The camera is busy",
        "No permission to use the camera",
        "No camera found — the interview continues without video.",
        "The camera stopped — the other side sees a black picture.",
        "The camera cannot be used — the interview continues without video.",
        "The microphone is busy",
        "No permission to use the microphone",
        "No microphone — the interview continues without sound from this side.",
        "The microphone stopped — the other side hears silence from you.",
        "The speaker is busy",
        "No speaker — the other side's sound is not played here.",
        "The speaker cannot be used — the other side's sound is not played here.",
    ]
    assert not any("No camera found" in line for line in lines[:2] + lines[3:])
    # every sentence keeps the device's own message, on one line
    assert all(line.endswith(")") and "\n" not in line for line in lines)
    assert "busy: /dev/video0 is in use" in lines[0]


def test_a_problem_keeps_its_language_and_its_starter_only_in_it() -> None:
    from assessiq.room.problems import canonical_language, starter_for

    text = "# Echo\nEcho the input.\n\n## Starter code\n```cpp\nint main() {}\n```\n"
    problem = parse_problem(text)
    assert problem.language == "cpp" and canonical_language(problem.language) == "c++"
    assert [canonical_language(n) for n in ("js", "Node", "py", "python3", "g++", "Rust")] \
        == ["javascript", "javascript", "python", "python", "c++", "rust"]
    assert starter_for(problem, "c++") == "int main() {}\n"
    assert starter_for(problem, "cpp") == "int main() {}\n"
    # another language: a comment in that language's syntax, never the C++ code
    assert starter_for(problem, "python") == ("# Your Python solution: read standard input, "
                                              "print to standard output.\n")
    assert starter_for(problem, "javascript").startswith("// Your JavaScript solution")
