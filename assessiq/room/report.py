"""A readable report of a sealed session (Markdown, and the same as HTML; the HTML also shows
the final code coloured by who wrote it and how)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import markdown2
from pycrdt import Doc

from ..core.document import SharedDoc, apply_update_checked
from ..core.errors import PolicyError
from ..core.policy import Policy
from ..core.record import SessionRecord
from ..core.resume import describe
from ..core.verify import Verdict
from .provenance_report import markdown_lines, report_html

__all__ = ["clock", "date_time", "render_markdown", "write_reports"]

MAX_REFUSALS_LISTED = 200
"""The report lists this many refusals; the rest are counted (all are in the session file)."""


def clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")


def date_time(t: float) -> str:
    """A time that may fall on another day than today's, with its date (UTC)."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _stamper(start: float | None) -> Callable[[float], str]:
    """The report's times: the time of day, and the date too wherever it is not the day the
    session started (an interview can run past midnight UTC)."""
    day = dt.datetime.fromtimestamp(start, dt.UTC).date() if start is not None else None

    def stamp(t: float) -> str:
        when = dt.datetime.fromtimestamp(t, dt.UTC)
        return when.strftime("%H:%M:%S") if when.date() == day else \
            when.strftime("%Y-%m-%d %H:%M:%S")

    return stamp


def _final_doc(record: SessionRecord) -> SharedDoc:
    doc: Doc[Any] = Doc()
    for row in record.updates:
        try:
            apply_update_checked(doc, row.data)
        except ValueError:  # a damaged history (verify reports it): the code up to there
            break
    return SharedDoc(doc)


def _fence(text: str, lang: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def render_markdown(record: SessionRecord, verdict: Verdict) -> str:
    out = verdict.to_json()
    meta = record.meta
    created = meta.get("created")
    start = float(created) if isinstance(created, int | float) else None
    clock = _stamper(start)  # (shadows the module's: with the date where it is another day)
    sealed_at = verdict.sealed_at
    lines = [f"# AssessIQ session report — {meta.get('problem') or meta.get('label') or ''}",
             "", f"- session: `{verdict.session}`",
             f"- interviewer key: `{verdict.host or '-'}`",
             f"- candidate device: `{verdict.candidate or '-'}`"
             + (f" ({meta['candidate_name']})" if meta.get("candidate_name") else ""),
             f"- started: {date_time(start)}" if start is not None else "- started: -",
             f"- sealed: {date_time(sealed_at)}" if sealed_at is not None else "- not sealed",
             "- times below are UTC, on the interviewer's clock",
             *_accommodation_lines(meta.get("policy")),
             f"- integrity events: {verdict.events}", ""]
    if verdict.valid:
        lines.append("**VALID**: sealed by the interviewer; every event signed by the "
                     "candidate's device, in order, unbroken, receipted.")
    else:
        lines.append("**INVALID**:")
        lines += [f"- {e}" for e in verdict.errors]
    lines += ["", "> A valid record proves who signed each event and that nothing was changed "
              "afterwards. It cannot prove the candidate's app was unmodified.", ""]
    if out["score"] is not None:
        lines += [f"## Integrity score: {out['score']}/100", ""]
        for item in out["explanation"]:
            lines.append(f"- −{item['penalty']:g} **{item['kind']}**: {item['why']}")
        if not out["explanation"]:
            lines.append("- nothing counted against the score")
        lines.append("")
        if out["flags"]:
            lines += ["### Flags", ""] + [
                f"- {clock(f['start'])} {f['kind']} ({f['reason']}, {f['duration']:g} s)"
                for f in out["flags"]] + [""]
        if out["warnings"]:
            lines += ["### Warnings shown to the candidate", ""] + [
                f"- {clock(w['start'])} {w['kind']} ({w['reason']})" for w in out["warnings"]
            ] + [""]
        if out["gaps"]:
            lines += ["### Heartbeat gaps", ""] + [
                f"- {clock(g['start'])} no heartbeat for {g['duration']:.0f} s"
                for g in out["gaps"]] + [""]
    lines += _refusal_lines(out["refused"], out["refusals"], clock)
    if verdict.restarts:
        lines += [f"## Restarts ({len(verdict.restarts)}: an app died and resumed the "
                  "session)", ""]
        lines += [f"- {describe(r, clock)}" for r in verdict.restarts] + [""]
    if verdict.admissions:
        lines += ["## Devices admitted by the interviewer", ""]
        lines += [f"- {clock(a['at'])} device {a['fingerprint']} ({a['name'] or 'no name'}) "
                  f"in place of the one before, from event {a['from_seq']}"
                  + (f" — {a['problem']}" if a.get("problem") else "")
                  for a in verdict.admissions] + [""]
    events = verdict.log.events if verdict.log else []
    shown = [e for e in events if not e.kind.endswith("heartbeat")]
    lines += ["## Integrity timeline", ""]
    lines += [f"- {clock(e.t)} `{e.kind}` {e.data.get('phase', '')} "
              f"{_data_words(e.data)}".rstrip() for e in shown] or ["- no events"]
    lines += ["", f"({len(events) - len(shown)} heartbeats not listed)", "", "## Runs", ""]
    checks = {c.get("id"): c for c in verdict.runs}
    for run in record.runs:
        result = run.get("result") or {}
        stage = result.get("run") or {}
        tests = result.get("tests") or []
        passed = sum(1 for t in tests if t.get("passed"))
        check = checks.get(run.get("id"), {})
        said = f" — **{check['verdict']}**" if check.get("verdict") else ""
        lines.append(f"### {clock(run['t'])} by {run['request'].get('by', '?')}: exit "
                     f"{stage.get('code')} {stage.get('status') or ''}, public tests "
                     f"{passed}/{len(tests)}{said}")
        if check.get("ok") is False:
            lines.append("- **this run's recorded verdict does not follow from what it "
                         "recorded** (see the errors above)")
        for t in tests:
            if isinstance(t, dict) and "expected" in t:
                lines.append(f"- {'passed' if t.get('passed') else '**failed**'} "
                             f"`{t.get('name')}`")
                if not t.get("passed") and t.get("diff"):  # expected against actual
                    lines.append(_fence(str(t["diff"])[-2000:], "diff"))
        if stage.get("output"):
            lines.append(_fence(str(stage["output"])[-2000:]))
    if not record.runs:
        lines.append("- no runs")
    hidden = {str(p["value"].get("run_id")): p["value"] for p in record.private
              if p["kind"] == "hidden_results" and isinstance(p["value"], dict)}
    if hidden:
        lines += ["", "## Hidden tests (interviewer only)", ""]
        for run in record.runs:  # by the run's time and author, each test by its name
            h = hidden.get(str(run.get("id")))
            if h is None:
                continue
            results = [r for r in h.get("tests") or [] if isinstance(r, dict)]
            ok = sum(1 for r in results if r.get("passed"))
            named = ", ".join(f"`{r.get('name')}` {'passed' if r.get('passed') else '**failed**'}"
                              for r in results)
            lines.append(f"- run at {clock(run['t'])} by {run['request'].get('by', '?')}: "
                         f"{ok}/{len(results)} passed — {named}")
    notes = [p for p in record.private if p["kind"] == "note"]
    lines += ["", "## Interviewer notes", ""]
    lines += [f"- {clock(n['t'])} {n['value'].get('text', '')}" for n in notes] or ["- none"]
    try:
        doc = _final_doc(record)
        lines += ["", f"## Final code ({doc.language})", "", _fence(doc.code_text, doc.language)]
    except Exception as exc:  # a damaged history is already an error in the verdict
        lines += ["", f"## Final code: cannot be replayed ({type(exc).__name__})"]
    lines += markdown_lines(verdict.provenance, clock)
    return "\n".join(lines) + "\n"


def _accommodation_lines(policy_text: Any) -> list[str]:
    """What the interviewer set for this candidate (from the sealed policy)."""
    try:
        policy = Policy.from_toml(policy_text) if isinstance(policy_text, str) else None
    except PolicyError:
        return []  # (an unreadable policy is already an error in the verdict)
    if policy is None or not policy.accommodations.any:
        return []
    return ["- accommodations set by the interviewer: "
            + " ".join(policy.accommodations.words())]


def _refusal_lines(total: int, refusals: list[dict[str, Any]],
                   clock: Callable[[float], str]) -> list[str]:
    """The sealed record's refusals: what the host would not take from the candidate's app."""
    lines = [f"## Refused from the candidate's app ({total})", ""]
    for r in refusals[:MAX_REFUSALS_LISTED]:
        count = f" (×{r['count']})" if r["count"] > 1 else ""
        lines.append(f"- {clock(r['t'])} `{r['channel']}` {r['reason']}{count}")
    if len(refusals) > MAX_REFUSALS_LISTED:
        lines.append(f"- … {len(refusals) - MAX_REFUSALS_LISTED} more in the session file "
                     "(`assessiq verify --json`)")
    if not refusals:
        lines.append("- none")
    return [*lines, ""]


def _data_words(data: dict[str, Any]) -> str:
    keep = {k: v for k, v in data.items() if k not in ("phase", "start", "end", "confidence")}
    if "duration" in keep:
        keep["duration"] = f"{float(keep['duration']):.1f}s"
    return " ".join(f"{k}={v}" for k, v in keep.items())


def write_reports(record: SessionRecord, verdict: Verdict, session_file: Path
                  ) -> tuple[Path, Path]:
    """Write `<session>.report.md` and `.report.html` next to the session file."""
    text = render_markdown(record, verdict)
    md = session_file.with_suffix(".report.md")
    md.write_text(text, encoding="utf-8")
    body = markdown2.markdown(text, safe_mode="escape", extras=["fenced-code-blocks"])
    page = (f"<!doctype html><meta charset='utf-8'><title>AssessIQ report</title>"
            f"<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}"
            f"pre{{background:#f4f4f4;padding:.5em;overflow:auto}}</style>{body}"
            f"{report_html(verdict.provenance)}")
    out = session_file.with_suffix(".report.html")
    out.write_text(page, encoding="utf-8")
    return md, out
