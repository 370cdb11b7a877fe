"""Code provenance with real browsers: the candidate types, pastes (a real clipboard paste
event, which also sends the signed `paste` event) and drops text into the shared editor (a
drop event: no paste event); the interviewer's live card and the candidate's transparency
panel say so while the interview runs, and the host's sealed record, `verify --json` and
report attribute each text to the candidate with the right how.

One interview (host + candidate apps, joined and started) for the whole module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    App,
    by_testid,
    calibrated_interview,
    click,
    editor_text,
    focus_editor_at,
    screenshot,
    text_of,
    type_in_editor,
    wait_for,
)

pytestmark = pytest.mark.timeout(400)

TYPED = "def solve(data):\n"
PASTED = "    numbers = [int(x) for x in data.split()]\n    return sum(numbers)\n"
DROPPED = "print(solve(open(0).read()))  # dropped in\n"

_EVENT_JS = """
const kind = arguments[0], text = arguments[1];
const ed = document.querySelector("[data-testid=editor]").aiqEditor;
const content = document.querySelector("[data-testid=editor] .cm-content");
const data = new DataTransfer();
data.setData("text/plain", text);
if (kind === "paste") {
  content.dispatchEvent(new ClipboardEvent("paste",
      {clipboardData: data, bubbles: true, cancelable: true}));
} else {
  const end = ed.editor.state.doc.length;
  const at = ed.editor.coordsAtPos(end);
  content.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true,
      cancelable: true, clientX: at.left + 1, clientY: (at.top + at.bottom) / 2}));
}
return ed.editor.state.doc.length;
"""


@dataclass
class Ended:
    session_file: Path
    code: str
    host_live: str
    candidate_live: str
    browser: Any
    data_dir: Path


@pytest.fixture(scope="module")
def ended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ended]:
    host_dir = tmp_path_factory.mktemp("prov-host")
    cand_dir = tmp_path_factory.mktemp("prov-cand")
    with calibrated_interview(host_dir, cand_dir) as (hd, cd, starter):
        # the candidate types at the end, then pastes, then drops text in
        focus_editor_at(cd, len(starter.encode("utf-16-le")) // 2)
        type_in_editor(cd, TYPED)
        typed_text = wait_for(lambda: editor_text(cd), what="the typing")
        assert typed_text.startswith(starter + "def solve(data):\n"), typed_text
        focus_editor_at(cd, len(typed_text))
        cd.execute_script(_EVENT_JS, "paste", PASTED)
        wait_for(lambda: editor_text(cd).endswith(PASTED), what="the paste in the editor")
        cd.execute_script(_EVENT_JS, "drop", DROPPED)
        code = wait_for(lambda: editor_text(cd) if editor_text(cd).endswith(DROPPED) else "",
                        what="the dropped text in the editor")
        wait_for(lambda: editor_text(hd) == code, what="the code on the host's page")
        host_live = wait_for(lambda: "one burst" in text_of(hd, "provenance-summary")
                             and text_of(hd, "provenance-summary"),
                             what="the burst on the interviewer's live card")
        candidate_live = wait_for(lambda: "1 paste" in text_of(cd, "provenance-summary")
                                  and text_of(cd, "provenance-summary"),
                                  what="the paste on the candidate's panel")
        hd.execute_script("arguments[0].scrollIntoView()", by_testid(hd, "provenance"))
        screenshot(hd, "host-provenance")
        click(hd, "end")
        click(hd, "end-confirm")
        wait_for(lambda: hd.current_url.endswith("/host/ended"), timeout=90,
                 what="ended page")
        session_file = Path(text_of(hd, "session-file").split(": ", 1)[1])
        yield Ended(session_file, code, host_live, candidate_live, hd, host_dir)


def _verify(path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "assessiq", "verify", "--json", str(path)],
                         capture_output=True, text=True, timeout=120)
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_paste_and_drop_are_attributed_in_the_hosts_record(ended: Ended) -> None:
    doc = _verify(ended.session_file)
    assert doc["valid"], doc["errors"]
    prov = doc["provenance"]
    assert prov["errors"] == [] and prov["conflicts"] == []
    per_char: list[tuple[str, str]] = []
    for start, end, author, how in prov["segments"]:
        per_char += [(author, how)] * (end - start)
    assert len(per_char) == len(ended.code)
    paste_at = ended.code.index(PASTED)
    drop_at = ended.code.index(DROPPED)
    assert set(per_char[paste_at:paste_at + len(PASTED)]) == {("candidate", "pasted")}
    assert set(per_char[drop_at:drop_at + len(DROPPED)]) == {("candidate", "burst")}
    typed_at = ended.code.index(TYPED)
    assert set(per_char[typed_at:typed_at + len(TYPED)]) <= {("candidate", "typed"),
                                                             ("editor", "auto")}
    assert set(per_char[:typed_at]) == {("editor", "starter")}  # the host's starter code
    [paste] = prov["pastes"]
    assert paste["kept"] == len(PASTED) and paste["chars"] == len(PASTED)
    [burst] = prov["bursts"]
    assert burst["chars"] == len(DROPPED) and burst["kept"] == len(DROPPED)
    assert prov["transcriptions"] == []
    assert [c for c, a in prov["writers"].items() if a == "candidate"]


def test_the_report_and_the_live_views_said_the_same(ended: Ended) -> None:
    report = ended.session_file.with_suffix(".report.md").read_text(encoding="utf-8")
    html = ended.session_file.with_suffix(".report.html").read_text(encoding="utf-8")
    assert "## Who wrote the code" in report
    assert "pasted in 1 paste" in report and "one burst at" in report
    assert 'data-prov="candidate-pasted"' in html and 'data-prov="candidate-burst"' in html
    assert "pasted in 1 paste" in ended.host_live and "one burst" in ended.host_live
    assert ended.candidate_live.startswith("You typed")


def test_the_replay_colours_the_final_code_the_same_way(ended: Ended) -> None:
    replay = App(["replay", str(ended.session_file)], ended.data_dir)
    try:
        ended.browser.get(replay.url)
        summary = wait_for(lambda: text_of(ended.browser, "replay-provenance"),
                           what="the replay's provenance")
        assert "pasted in 1 paste" in summary and "one burst at" in summary
        spans = ended.browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-prov]'))"
            ".map(e => [e.dataset.prov, e.textContent]);")
        assert ["candidate-pasted", PASTED] in spans
        assert ["candidate-burst", DROPPED] in spans
    finally:
        replay.stop()
