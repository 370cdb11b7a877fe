"""SharedDoc: the typed interview document over pycrdt."""

from __future__ import annotations

import json
from typing import Any

import pycrdt
import pytest

from assessiq.core.document import PHASES, CodeChange, SharedDoc

EMOJI_CODE = "print('👨\u200d👩\u200d👧 世界')  # 🇫🇷 e\u0301"


def exchange(a: SharedDoc, b: SharedDoc) -> None:
    """Both ways, the missing part only."""
    b.apply_update(a.get_update(b.get_state()))
    a.apply_update(b.get_update(a.get_state()))


def apply_utf16(text: str, change: CodeChange) -> str:
    units = text.encode("utf-16-le")
    out, last = b"", 0
    for c in change.changes_utf16:
        out += units[last : 2 * c.start] + c.insert.encode("utf-16-le")
        last = 2 * c.end
    return (out + units[last:]).decode("utf-16-le")


def test_code_edits_use_code_points_with_emoji_and_cjk() -> None:
    doc = SharedDoc()
    doc.insert_code(0, EMOJI_CODE)
    family_end = EMOJI_CODE.index("\u200d👧") + 2
    doc.insert_code(family_end, "!")
    expected = EMOJI_CODE[:family_end] + "!" + EMOJI_CODE[family_end:]
    doc.delete_code(expected.index("世"), 2)
    expected = expected.replace("世界", "")
    assert doc.code_text == expected
    # The pycrdt Text holds the same string (read fresh, not from the mirror).
    assert str(doc.doc.get("code", type=pycrdt.Text)) == expected


def test_set_code_and_editor_changes_in_utf16() -> None:
    doc = SharedDoc()
    doc.set_code("a😀b世c")
    # UTF-16: a=0, 😀=1..3, b=3, 世=4, c=5
    doc.apply_editor_changes([{"from": 1, "to": 3, "insert": "🎉🎉"}, {"from": 5, "insert": "+"}])
    assert doc.code_text == "a🎉🎉b世+c"
    doc.set_code("")
    assert doc.code_text == ""


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: d.insert_code(99, "x"), "out of range 0..3"),
        (lambda d: d.insert_code(-1, "x"), "out of range"),
        (lambda d: d.delete_code(2, 5), "cannot delete 5 code points at 2"),
        (lambda d: d.insert_code(0, "\ud800"), "lone surrogate"),
        (lambda d: d.insert_code(0, 5), "must be a str"),
        (lambda d: d.apply_editor_changes([{"from": 2, "to": 3}]), "splits a surrogate"),
        (lambda d: d.apply_editor_changes([{"from": 0, "to": 9}]), "out of range"),
    ],
)
def test_bad_code_edits_are_refused_and_change_nothing(call, message) -> None:
    doc = SharedDoc()
    doc.set_code("a😀b")
    updates: list[bytes] = []
    doc.observe_updates(lambda update, origin: updates.append(update))
    with pytest.raises(ValueError, match=message):
        call(doc)
    assert doc.code_text == "a😀b"
    assert updates == []


def test_a_failing_change_set_leaves_no_half_edit() -> None:
    doc = SharedDoc()
    doc.set_code("abc")
    # The first op is fine, the second is out of range: nothing may be applied.
    with pytest.raises(ValueError):
        doc.apply_editor_changes([{"from": 0, "insert": "X"}, {"from": 7, "insert": "Y"}])
    assert doc.code_text == "abc"
    assert str(doc.doc.get("code", type=pycrdt.Text)) == "abc"


def test_metadata_properties_and_validation() -> None:
    doc = SharedDoc()
    assert (doc.language, doc.problem, doc.phase, doc.timer()) == ("python", "", "lobby", None)
    doc.language = "c++"
    doc.problem = "# Two sum\n\nGiven 整数…"
    for phase in PHASES:
        doc.phase = phase  # type: ignore[assignment]
        assert doc.phase == phase
    doc.start_timer(1800, now=1_700_000_000.25)
    assert doc.timer() == {"started_at": 1_700_000_000.25, "duration_s": 1800.0}
    doc.clear_timer()
    assert doc.timer() is None
    assert doc.language == "c++"
    with pytest.raises(ValueError, match="phase must be one of lobby, interview, wrap-up, ended"):
        doc.phase = "break"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="language must be a non-empty name"):
        doc.language = "py thon"
    with pytest.raises(ValueError, match="timer duration must be positive"):
        doc.start_timer(0, now=1.0)
    with pytest.raises(ValueError, match="must be finite"):
        doc.start_timer(10, now=float("nan"))


def test_public_tests_round_trip_and_validation() -> None:
    doc = SharedDoc()
    tests = [
        {"name": "small", "stdin": "1 2\n", "expected": "3\n"},
        {"name": "中", "stdin": "", "expected": ""},
    ]
    doc.set_public_tests(tests)
    assert doc.public_tests() == tests
    with pytest.raises(ValueError, match="exactly the keys name, stdin, expected"):
        doc.set_public_tests([{"name": "x", "stdin": ""}])
    with pytest.raises(ValueError, match="public test 1 stdin must be a str"):
        doc.set_public_tests([{"name": "x", "stdin": 1, "expected": ""}])
    with pytest.raises(ValueError, match="must be a list"):
        doc.set_public_tests("nope")  # type: ignore[arg-type]
    assert doc.public_tests() == tests


def test_runs_keep_request_order_and_results() -> None:
    doc = SharedDoc()
    doc.request_run("r1", by="candidate", at=10.0, language="python", source="print(1)")
    doc.request_run("r2", by="host", at=11.5, language="python", source="print(2)")
    result = {"run": {"stdout": "2\n", "stderr": "", "code": 0, "signal": None, "output": "2\n"}}
    doc.set_run_result("r2", result)
    runs = doc.runs()
    assert [r["run_id"] for r in runs] == ["r1", "r2"]
    assert runs[0]["result"] is None
    assert runs[1]["result"] == result
    assert isinstance(runs[1]["result"]["run"]["code"], int)  # JSON keeps ints exact
    with pytest.raises(ValueError, match="already requested"):
        doc.request_run("r1", by="x", at=1, language="python", source="")
    with pytest.raises(ValueError, match="no run 'r9' was requested"):
        doc.set_run_result("r9", {})
    with pytest.raises(ValueError, match="not plain JSON data"):
        doc.set_run_result("r1", {"bad": object()})


def test_snapshot_is_plain_deterministic_and_equal_after_sync() -> None:
    a = SharedDoc(client_id=1)
    a.set_code(EMOJI_CODE)
    a.language = "rust"
    a.phase = "interview"
    a.start_timer(600, now=5.0)
    a.set_public_tests([{"name": "t", "stdin": "", "expected": "ok"}])
    a.request_run("r1", by="candidate", at=6.0, language="rust", source="fn main(){}")
    a.set_run_result("r1", {"run": {"code": 1}})
    b = SharedDoc(client_id=2)
    exchange(a, b)
    snap = a.snapshot()
    assert b.snapshot() == snap
    assert json.loads(a.snapshot_json()) == snap
    assert a.snapshot_json() == b.snapshot_json()
    # A document rebuilt from the update alone gives the same snapshot.
    c = SharedDoc()
    c.apply_update(a.get_update())
    assert c.snapshot_json() == a.snapshot_json()
    assert set(snap) == {"code", "language", "problem", "phase", "timer", "public_tests", "runs"}


def test_wrapping_an_existing_doc_keeps_its_content() -> None:
    a = SharedDoc()
    a.set_code("x = 1")
    a.language = "go"
    assert a.split and a.doc is a.part_doc("code") is not a.part_doc("state")
    # the two parts' histories join into one pycrdt document (what the session file holds)
    joined: pycrdt.Doc[Any] = pycrdt.Doc()
    joined.apply_update(a.get_update())
    again = SharedDoc(joined)
    assert not again.split
    assert again.code_text == "x = 1"
    assert again.language == "go"
    assert again.snapshot_json() == a.snapshot_json()
    with pytest.raises(ValueError, match="not both"):
        SharedDoc(pycrdt.Doc(), client_id=3)


def test_values_of_the_wrong_shape_from_a_peer_read_as_absent() -> None:
    raw: pycrdt.Doc[pycrdt.Map] = pycrdt.Doc()
    meta = raw.get("meta", type=pycrdt.Map)
    meta["phase"] = "party"
    meta["language"] = 3.0
    meta["timer"] = "{not json"
    meta["public_tests"] = json.dumps([{"name": 1}])
    raw.get("runs", type=pycrdt.Array).extend(["r1", "r1", 7.0, "ghost"])
    raw.get("run_requests", type=pycrdt.Map)["r1"] = json.dumps(
        {"run_id": "r1", "by": "c", "at": 1.0, "language": "py", "source": ""}
    )
    doc = SharedDoc()
    doc.apply_update(raw.get_update())
    assert doc.snapshot() == {
        "code": "",
        "language": "python",
        "problem": "",
        "phase": "lobby",
        "timer": None,
        "public_tests": [],
        "runs": [
            {"run_id": "r1", "by": "c", "at": 1.0, "language": "py", "source": "", "result": None}
        ],
    }


def test_origins_reach_update_observers() -> None:
    a = SharedDoc()
    seen: list[tuple[int, str | None]] = []
    unsubscribe = a.observe_updates(lambda update, origin: seen.append((len(update), origin)))
    a.insert_code(0, "hi", origin="candidate")
    a.set_phase("interview", origin="host")
    a.language = "java"
    b = SharedDoc()
    b.insert_code(0, "yo")
    a.apply_update(b.get_update(), origin="peer")
    with a.transaction(origin="batch"):
        a.insert_code(0, "1")
        a.insert_code(0, "2")
    assert [origin for _, origin in seen] == ["candidate", "host", None, "peer", "batch"]
    assert all(size > 2 for size, _ in seen)
    unsubscribe()
    a.insert_code(0, "z")
    assert len(seen) == 5


def test_transaction_origin_reaches_pycrdt() -> None:
    a = SharedDoc()
    origins: list[object] = []
    code = a.doc.get("code", type=pycrdt.Text)  # keep it: its subscription lives with it
    code.observe(lambda e: origins.append(e.transaction.origin))
    a.insert_code(0, "x", origin="candidate")
    assert origins == ["candidate"]


def test_observe_code_reports_code_points_and_utf16_for_local_and_remote_changes() -> None:
    a = SharedDoc(client_id=1)
    b = SharedDoc(client_id=2)
    a.set_code("a😀b")
    changes: list[CodeChange] = []
    texts = [b.code_text]

    def on_change(change: CodeChange) -> None:
        changes.append(change)
        texts.append(b.code_text)  # safe inside the callback

    unsubscribe = b.observe_code(on_change)
    exchange(a, b)
    a.insert_code(2, "世", origin="candidate")
    b.apply_update(a.get_update(b.get_state()), origin="remote")
    b.apply_editor_changes([{"from": 1, "to": 3, "insert": "🇫🇷"}], origin="host")
    b.language = "go"  # not a code change
    assert [c.origin for c in changes] == ["remote", "remote", "host"]
    assert [c.text for c in changes] == ["a😀b", "a😀世b", "a🇫🇷世b"]
    assert texts[1:] == [c.text for c in changes]
    second = changes[1]
    assert [(c.start, c.end, c.insert) for c in second.changes] == [(2, 2, "世")]
    assert [(c.start, c.end, c.insert) for c in second.changes_utf16] == [(3, 3, "世")]
    third = changes[2]
    assert [(c.start, c.end) for c in third.changes_utf16] == [(1, 3)]
    assert [(c.start, c.end) for c in third.changes] == [(1, 2)]
    previous = ""
    for change in changes:  # an editor replaying the UTF-16 changes stays identical
        previous = apply_utf16(previous, change)
        assert previous == change.text
    unsubscribe()
    b.insert_code(0, "z")
    assert len(changes) == 3
    assert b.code_text == "za🇫🇷世b"


def test_ascii_fast_path_agrees_with_the_general_path() -> None:
    """Keystrokes into pure-ASCII code skip re-indexing; the result must be the same as the
    general path's across switches between ASCII and non-ASCII text and remote edits."""
    fast, other = SharedDoc(), SharedDoc()
    script: list[tuple[str, int, str | int]] = [
        ("ins", 0, "def f():\n"), ("ins", 9, "    return 1\n"), ("del", 4, 1),
        ("ins", 4, "é"), ("ins", 0, "# 数 🙂\n"), ("del", 0, 7), ("del", 3, 1),
        ("ins", 3, "g"), ("ins", 0, "x"),
    ]
    expected = ""
    for op, index, arg in script:
        if op == "ins":
            assert isinstance(arg, str)
            fast.insert_code(index, arg)
            expected = expected[:index] + arg + expected[index:]
        else:
            assert isinstance(arg, int)
            fast.delete_code(index, arg)
            expected = expected[:index] + expected[index + arg:]
        assert fast.code_text == expected
    other.insert_code(0, "remote 🙂 ")
    fast.apply_update(other.get_update())
    merged = fast.code_text
    assert "remote 🙂 " in merged and len(merged) == len(expected) + len("remote 🙂 ")
    fast.insert_code(len(merged), "!")
    assert fast.code_text == merged + "!"
    with pytest.raises(ValueError, match="out of range"):
        fast.insert_code(len(merged) + 5, "x")
    with pytest.raises(ValueError, match="cannot delete"):
        fast.delete_code(0, len(merged) + 2)
    assert fast.code_text == merged + "!"
