"""Code provenance on generated traces: honest typing at human rhythms is typing (no burst,
no transcription finding), planted bursts, pastes and an autotyper are each found with the
right characters and times, and the item-level replay orders text as pycrdt does."""

from __future__ import annotations

import random
from typing import Any

import pycrdt
import pytest

from assessiq.core.provenance import (
    PasteMark,
    Provenance,
    compute,
    generated_ranges,
    policy_weight,
)
from assessiq.core.textreplay import TextReplay
from tests.provenance_traces import SOLUTION, Trace, lognormal, source_text, uniform


def _prov(tr: Trace) -> Provenance:
    p = compute(tr.rows, pastes=tr.pastes, generated=tr.generated, final_text=tr.code)
    assert p.errors == []
    assert p.text == tr.code
    return p


def _span(p: Provenance, start: int, end: int) -> set[tuple[str, str]]:
    return set(p.per_char()[start:end])


def _candidate_trace(seed: int) -> Trace:
    tr = Trace(seed=seed)
    tr.starter("# Read the input, print the answer.\n")
    tr.move("candidate", len(tr.code))
    return tr


# ---------------------------------------------------------------------- the replay itself
@pytest.mark.parametrize("seed", range(40))
def test_the_item_replay_orders_concurrent_edits_as_pycrdt(seed: int) -> None:
    rng = random.Random(seed)
    docs = [pycrdt.Doc(client_id=rng.randrange(1, 2**32)) for _ in range(3)]
    texts = [d.get("code", type=pycrdt.Text) for d in docs]
    meta = docs[0].get("meta", type=pycrdt.Map)
    rows: list[bytes] = []
    docs[0].observe(lambda e: rows.append(e.update))
    for _ in range(200):
        i = rng.randrange(3)
        s = str(texts[i])
        r = rng.random()
        if r < 0.55:
            p = rng.randrange(len(s) + 1)
            ins = rng.choice(["a", "bc", "😀", "中文", "\n    ", "xyz" * rng.randrange(1, 5)])
            texts[i].insert(len(s[:p].encode()), ins)
        elif r < 0.75 and s:
            p = rng.randrange(len(s))
            q = min(len(s), p + rng.randrange(1, 6))
            del texts[i][len(s[:p].encode()):len(s[:q].encode())]
        elif r < 0.8 and i == 0:
            meta["k"] = str(rng.random())  # the state document's items are skipped
        else:
            a, b = rng.sample(range(3), 2)  # a sync between two of them, out of turn
            docs[b].apply_update(docs[a].get_update(docs[b].get_state()))
    for a in range(3):
        docs[0].apply_update(docs[a].get_update(docs[0].get_state()))
    replay = TextReplay()
    for update in rows:
        if update != b"\x00\x00":
            replay.apply(update)
    assert replay.text() == str(texts[0])


# ---------------------------------------------------------------------- honest typing
HONEST = {
    "120 wpm, few corrections": dict(iki=(0.10, 0.45), typo=0.01),
    "hunt and peck": dict(iki=(0.45, 0.5), typo=0.05),
}


@pytest.mark.parametrize("who", sorted(HONEST))
def test_honest_typing_is_typing(who: str) -> None:
    for seed in range(3):
        tr = _candidate_trace(seed)
        median, sigma = HONEST[who]["iki"]  # type: ignore[misc]
        iki = lognormal(random.Random(seed), median, sigma)
        tr.type("candidate", source_text(SOLUTION) * 2, iki=iki,
                typo=HONEST[who]["typo"], think=0.3)  # type: ignore[arg-type]
        p = _prov(tr)
        assert p.bursts == [] and p.transcriptions == [] and p.pastes == []
        # everything is the candidate's typing or the editor's (starter, indentation,
        # closing brackets: auto-close and auto-indent are heavy in this code)
        assert set(p.counts) == {"candidate", "editor"}
        assert set(p.counts["candidate"]) == {"typed"}
        assert p.counts["editor"]["starter"] == len("# Read the input, print the answer.\n")
        assert p.counts["editor"]["auto"] > 100
        assert p.rhythm["candidate"]["keys"] > 400  # (runs of 10 keys or more)


def test_cjk_through_an_ime_counts_as_typing() -> None:
    tr = _candidate_trace(1)
    iki = lognormal(random.Random(1), 0.15, 0.45)
    tr.type("candidate", "print(", iki=iki)
    for latin, result in [("nihao", "你好"), ("shijie", "世界"), ("women", "我们"),
                          ("jintian", "今天"), ("qunali", "去哪里"), ("konnichiha", "こんにちは")]:
        tr.ime("candidate", latin, result, iki=iki)
        tr.type("candidate", ",", iki=iki)
    tr.ime("candidate", "zhongwenshurufa", "中文输入法中文输入法中文输入法", iki=iki)
    p = _prov(tr)
    assert p.bursts == [] and p.transcriptions == []
    start = tr.code.index("你好")
    assert _span(p, start, len(tr.code) - 1) == {("candidate", "typed")}


def test_emoji_flags_and_joined_sequences_are_one_key() -> None:
    tr = _candidate_trace(2)
    iki = lognormal(random.Random(2), 0.2, 0.45)
    for key in ["👨‍👩‍👧‍👦", " ", "🏳️‍🌈", " ", "🇯🇵", " ", "é", "👍🏽"] * 4:
        tr.wait(iki())
        tr.key("candidate", key) if len(key) == 1 else tr.paste("candidate", key, event=False)
    p = _prov(tr)
    assert p.bursts == []
    assert p.counts["candidate"] == {"typed": len(tr.code) - p.counts["editor"]["starter"]}


# ---------------------------------------------------------------------- planted
def test_an_autotyper_at_25_to_40_ms_is_transcription_with_its_characters_and_times() -> None:
    tr = _candidate_trace(3)
    rng = random.Random(3)
    tr.type("candidate", "import sys\n", iki=lognormal(rng, 0.12, 0.45), typo=0.02)
    tr.wait(20)
    first_row = len(tr.rows)
    start = len(tr.code)
    tr.type("candidate", source_text(SOLUTION), iki=uniform(rng, 0.025, 0.040))
    end = len(tr.code)
    last_row = len(tr.rows) - 1
    tr.wait(8)
    tr.type("candidate", "# done\n", iki=lognormal(rng, 0.12, 0.45))
    p = _prov(tr)
    [finding] = p.transcriptions
    assert finding["author"] == "candidate"
    assert (finding["t0"], finding["t1"]) == (tr.rows[first_row].t, tr.rows[last_row].t)
    assert finding["median_ms"] < 45
    chars = p.per_char()
    typed_by_tool = {i for i in range(start, end) if chars[i][1] != "auto"}
    assert {chars[i] for i in typed_by_tool} == {("candidate", "transcription")}
    assert finding["kept"] == len(typed_by_tool)
    assert _span(p, 0, start) <= {("editor", "starter"), ("candidate", "typed"),
                                  ("editor", "auto")}
    assert _span(p, end, len(tr.code)) <= {("candidate", "typed"), ("editor", "auto")}


def test_a_slower_constant_autotyper_is_found_by_its_regularity() -> None:
    tr = _candidate_trace(4)
    tr.type("candidate", source_text(SOLUTION), iki=uniform(random.Random(4), 0.08, 0.12))
    p = _prov(tr)
    [finding] = p.transcriptions
    assert finding["why"] == "near-constant intervals" and finding["median_ms"] > 45


def test_a_400_character_insert_without_a_paste_event_is_a_burst() -> None:
    tr = _candidate_trace(5)
    rng = random.Random(5)
    tr.type("candidate", "def f():\n", iki=lognormal(rng, 0.15, 0.45))
    tr.wait(30)
    block = "".join(f"x{i} = {i} * {i}\n" for i in range(60))[:400]
    start = len(tr.code)
    tr.paste("candidate", block, event=False)  # dropped in: no paste event
    at = tr.t
    tr.type("candidate", "# end\n", iki=lognormal(rng, 0.15, 0.45))
    p = _prov(tr)
    [burst] = p.bursts
    assert burst["chars"] == 400 and burst["kept"] == 400
    assert burst["t"] == pytest.approx(at, abs=0.006)
    assert _span(p, start, start + 400) == {("candidate", "burst")}
    assert "one burst at" in p.sentence() and "with no paste event" in p.sentence()
    assert p.transcriptions == [] and p.pastes == []


def test_a_paste_with_its_event_is_pasted_and_matched() -> None:
    tr = _candidate_trace(6)
    rng = random.Random(6)
    tr.type("candidate", "x = 1\n", iki=lognormal(rng, 0.15, 0.45))
    tr.wait(10)
    start = len(tr.code)
    tr.paste("candidate", "def helper(a, b):\n    return a + b\n")
    tr.wait(3)
    tr.paste("candidate", "ab")  # a short paste is a paste too
    tr.type("candidate", "\nprint(x)\n", iki=lognormal(rng, 0.15, 0.45))
    p = _prov(tr)
    assert [(x["seq"], x["kept"]) for x in p.pastes] == [(0, 35), (1, 2)]
    assert _span(p, start, start + 37) == {("candidate", "pasted")}
    assert p.bursts == [] and p.unmatched_pastes == []
    assert "pasted in 2 pastes" in p.sentence()


def test_a_paste_event_too_far_in_time_or_size_matches_nothing() -> None:
    tr = _candidate_trace(7)
    tr.paste("candidate", "y = [i * i for i in range(10)]\n", event=False)
    tr.pastes.append(PasteMark(tr.t + 60, 31, 0))  # a minute later
    tr.pastes.append(PasteMark(tr.t, 500, 1))  # far larger than what arrived
    p = _prov(tr)
    assert len(p.bursts) == 1 and p.pastes == []
    assert sorted(u["seq"] for u in p.unmatched_pastes) == [0, 1]


def test_undo_redo_and_moves_keep_where_the_text_came_from() -> None:
    tr = _candidate_trace(8)
    rng = random.Random(8)
    tr.type("candidate", "a = 1\n", iki=lognormal(rng, 0.15, 0.45))
    pasted = "b = [n for n in range(100) if n % 7 == 3]\n"
    tr.paste("candidate", pasted)
    typed_start = len(tr.code)
    tr.type("candidate", "c = sum(b) + len(b) * 2\n", iki=lognormal(rng, 0.15, 0.45))
    # select the typed line and delete it, then undo: it comes back as one insert
    tr.wait(2)
    gone = tr.select_delete("candidate", typed_start, len(tr.code))
    tr.wait(1)
    tr.paste("candidate", gone, event=False)  # the undo's re-insert (no paste event)
    # drag the pasted line to the end (a delete and an insert in one transaction)
    p_start = tr.code.index(pasted)
    tr.wait(2)
    tr._edit("candidate", [(p_start, len(pasted), ""), (len(tr.code) - len(pasted),
                                                         0, pasted)])
    p = _prov(tr)
    assert p.bursts == []
    moved = tr.code.index(pasted)
    assert _span(p, moved, moved + len(pasted)) == {("candidate", "pasted")}
    c_line = tr.code.index("c = sum")
    assert _span(p, c_line, c_line + len(gone) - 1) <= {("candidate", "typed"),
                                                       ("editor", "auto")}


def test_the_interviewer_and_the_editor_are_told_apart_from_the_candidate() -> None:
    tr = _candidate_trace(9)
    rng = random.Random(9)
    tr.type("candidate", "def f(x):\nreturn x\n", iki=lognormal(rng, 0.15, 0.45))
    tr.move("interviewer", len(tr.code))
    tr.type("interviewer", "# try f(3)\n", iki=lognormal(rng, 0.2, 0.45))
    tr.move("interviewer", 0)
    tr.paste("interviewer", "# a hint pasted by the interviewer\n", event=False)
    p = _prov(tr)
    at = tr.code.index("# try f(3)")
    assert _span(p, at, at + 10) <= {("interviewer", "typed"), ("editor", "auto")}
    assert p.counts["interviewer"]["burst"] == len("# a hint pasted by the interviewer\n")
    assert p.counts["editor"]["starter"] == len("# Read the input, print the answer.\n")
    writers = {tr.writers[w].doc.client_id: a for w, a in
               (("candidate", "candidate"), ("interviewer", "interviewer"))}
    assert {c: a for c, a in p.writers.items() if c in writers} == writers
    assert p.conflicts == []
    assert "by the interviewer" in p.sentence()
    assert p.sentence(you=True).startswith("you typed")


def test_a_client_written_under_both_sides_is_a_conflict() -> None:
    tr = _candidate_trace(10)
    tr.type("candidate", "ab", iki=lambda: 0.2)
    row = tr.rows[-1]
    tr.rows[-1] = type(row)(row.seq, row.t, "host", row.data)  # relabelled
    p = compute(tr.rows, generated=tr.generated)
    assert p.conflicts == [tr.writers["candidate"].doc.client_id]


def test_generated_ranges_and_policy_weight_read_defensively() -> None:
    meta: dict[str, Any] = {"generated_code": [
        {"what": "starter", "client": 5, "from": 0, "to": 10},
        {"client": True, "from": 0, "to": 3}, {"client": 5, "from": 4, "to": 2}, "junk"]}
    assert generated_ranges(meta) == [(5, 0, 10)]
    assert generated_ranges({"generated_code": "x"}) == []
    assert policy_weight(None) == (0.0, 0.0)
    assert policy_weight("version = 1\n[provenance]\nweight = 2\nmax_penalty = 15\n") == \
        (2.0, 15.0)
    assert policy_weight("version = 1\n[provenance]\nweight = -1\n") == (0.0, 0.0)
    assert policy_weight("not toml [") == (0.0, 0.0)


def test_a_damaged_update_is_reported_not_raised() -> None:
    tr = _candidate_trace(11)
    tr.type("candidate", "abc", iki=lambda: 0.2)
    row = tr.rows[-1]
    tr.rows.append(type(row)(row.seq + 1, row.t, "candidate", b"\x05\xff"))
    p = compute(tr.rows, generated=tr.generated)
    assert p.errors and "cannot be read" in p.errors[0]
    assert p.text == tr.code


def test_a_crlf_paste_arriving_as_lf_still_matches_its_event() -> None:
    tr = _candidate_trace(12)
    text = "".join(f"line_{i} = {i}\n" for i in range(12))
    tr.paste("candidate", text, event=False)
    tr.pastes.append(PasteMark(tr.t, len(text) + text.count("\n"), 0))  # the clipboard's CRLF
    p = _prov(tr)
    assert [x["seq"] for x in p.pastes] == [0] and p.bursts == []


def test_damaged_updates_are_reported_never_raised() -> None:
    tr = _candidate_trace(13)
    rng = random.Random(13)
    tr.type("candidate", source_text(SOLUTION)[:120], iki=lognormal(rng, 0.1, 0.4), typo=0.05)
    tr.paste("candidate", "abc def ghi jkl\n" * 3, event=False)
    for _ in range(300):
        rows = list(tr.rows)
        k = rng.randrange(len(rows))
        data = bytearray(rows[k].data)
        for _ in range(rng.randint(1, 3)):
            what = rng.random()
            if what < 0.6 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif what < 0.8 and data:
                del data[rng.randrange(len(data)):]
            else:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        rows[k] = type(rows[k])(rows[k].seq, rows[k].t, rows[k].origin, bytes(data))
        p = compute(rows, pastes=tr.pastes, generated=tr.generated)
        assert len(p.per_char()) == len(p.text)


def test_editor_commands_are_not_bursts() -> None:
    """A duplicated line keeps its provenance; a comment toggled on six lines and a
    replace-all are typing."""
    tr = _candidate_trace(14)
    rng = random.Random(14)
    lines = "a = 1\ntotal = a + b + c + d\nc = 3\nd = 4\ne = 5\nf = 6\n"
    start = len(tr.code)
    tr.type("candidate", lines, iki=lognormal(rng, 0.15, 0.45))
    tr.wait(2)
    line = "total = a + b + c + d\n"  # duplicated below itself (one insert, no paste event)
    at = tr.code.index(line, start) + len(line)
    tr._edit("candidate", [(at, 0, line)])
    tr.wait(2)
    starts = [start + i for i, ch in enumerate(tr.code[start:]) if i == 0 or
              tr.code[start + i - 1] == "\n"][:6]
    tr._edit("candidate", [(s + k * 2, 0, "# ") for k, s in enumerate(starts)])
    tr.wait(2)  # replace all: "total" -> "grand_total_sum" at both places
    found = [k for k in range(len(tr.code)) if tr.code.startswith("total", k)]
    tr._edit("candidate", [(k + j * 10, 5, "grand_total_sum") for j, k in enumerate(found)])
    p = _prov(tr)
    assert p.bursts == []
    assert set(p.counts["candidate"]) == {"typed"}
    tr.wait(2)
    tr._edit("candidate", [(0, 0, line)])  # the same text where it repeats nothing: a burst
    assert [b["chars"] for b in _prov(tr).bursts] == [len(line)]
