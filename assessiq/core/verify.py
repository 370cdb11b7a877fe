"""Offline verification of a sealed session: signatures, chain, receipts, seal, and the score.

`valid` means: the seal is the host's and matches the record, every event is the pinned
candidate device's, in order, unbroken, and every receipt matches. It does not mean the
candidate behaved; the score and findings say that. It also cannot prove the candidate's app
was unmodified (see the README's trust model).

It also recomputes the code's provenance (`core.provenance`: who wrote each character of the
final code, and how) from the sealed history and the verified paste events; it is
information, not a finding, and counts towards the score only when the session's policy gives
it a weight (the default policy does not).

It lists every restart of either side (`core.resume`): a host restart entry whose signature or
fields do not check, or that the metadata's `host_restarts` contradicts, makes the record
invalid; a candidate's `session.resumed` event with a malformed claim is a finding (its event
is validly signed: the app said something wrong), and the policy counts its time away from the
host's arrival times all the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Text

from .admission import admissions, key_schedule
from .document import apply_update_checked
from .encoding import b64d
from .errors import PolicyError
from .identity import fingerprint
from .integrity import IntegrityError, LogCheck, Receipt, check_log, clock_rule
from .policy import Policy
from .provenance import Provenance, from_record, policy_weight
from .record import SessionRecord
from .resume import Restart, restarts, windows_problem
from .runcheck import check_runs
from .score import Evaluation, evaluate_session
from .seal import compute_manifest, host_key_of, open_seal

__all__ = ["Verdict", "verify_record"]

log_ = logging.getLogger(__name__)

_SECTION_WORDS = {
    "session": "the session id",
    "meta": "the session's metadata or policy",
    "updates": "the document history",
    "log": "the integrity log",
    "receipts": "the host's receipts",
    "runs": "the code runs",
    "private": "the host's private notes, hidden tests or score",
    "refusals": "the record of what the host refused",
}


@dataclass
class Verdict:
    valid: bool
    errors: list[str]
    events: int
    session: str = ""
    host: str | None = None
    candidate: str | None = None
    sealed: bool = False
    evaluation: Evaluation | None = None
    log: LogCheck | None = field(default=None, repr=False)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    """What the host refused from the candidate's app, as recorded and sealed."""
    runs: list[dict[str, Any]] = field(default_factory=list)
    """Each sealed run, `{"id", "verdict", "ok"}`: `ok` says its verdicts follow from what it
    recorded (None: it carries no proof to recompute; see `core.runcheck`)."""
    provenance: Provenance | None = None
    """Who wrote each character of the final code, and how (None: the history is unreadable)."""
    sealed_at: float | None = None
    """When the host sealed it, as its signed manifest says (None: not sealed, or forged)."""
    restarts: list[dict[str, Any]] = field(default_factory=list)
    """Every restart of either side, oldest first (`core.resume.Restart` as JSON, with
    `measured_s`: the time away the policy counted, on the host's clock, and its
    `penalty`). A host entry whose signature or fields do not check is also an error; a
    candidate's malformed claim is a finding (`problem`), its event being validly signed."""
    admissions: list[dict[str, Any]] = field(default_factory=list)
    """Each device the interviewer admitted in place of the one before (`core.admission`:
    from which event, the new key's fingerprint, its name, when it asked), oldest first."""

    def to_json(self) -> dict[str, Any]:
        ev = self.evaluation.to_json() if self.evaluation else {
            "score": None, "warnings": [], "flags": [], "gaps": [], "explanation": []}
        return {
            "valid": self.valid, "events": self.events, "errors": self.errors,
            "warnings": ev["warnings"], "flags": ev["flags"], "score": ev["score"],
            "explanation": ev["explanation"], "gaps": ev["gaps"], "session": self.session,
            "host": self.host, "candidate": self.candidate, "sealed": self.sealed,
            "refusals": [{k: r[k] for k in ("t", "channel", "reason", "count")}
                         for r in self.refusals],
            "refused": sum(int(r["count"]) for r in self.refusals),
            "runs": self.runs,
            "provenance": self.provenance.to_json() if self.provenance else None,
            "restarts": self.restarts,
            "admissions": self.admissions,
        }


def _key(record: SessionRecord, name: str) -> bytes | None:
    value = record.meta.get(name)
    try:
        key = b64d(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return key if key is not None and len(key) == 32 else None


def _compare_seal(manifest: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    errors = []
    for section, words in _SECTION_WORDS.items():
        sealed, now = manifest.get(section), actual[section]
        if sealed == now:
            continue
        if sealed is None and section == "refusals" and now["count"] == 0:
            continue  # sealed before refusals were recorded, and none are present
        if isinstance(sealed, dict) and isinstance(sealed.get("count"), int) and \
                sealed["count"] > now["count"]:
            errors.append(f"{words} was truncated after sealing "
                          f"({sealed['count']} sealed, {now['count']} present)")
        else:
            errors.append(f"{words} was changed after sealing")
    return errors


def _check_receipts(record: SessionRecord, host_key: bytes, log: LogCheck) -> list[str]:
    errors = []
    by_seq = {e.seq: e for e in log.events}
    last = max(by_seq) if by_seq else -1
    for i, raw in enumerate(record.receipts):
        try:
            receipt = Receipt.decode(raw)
        except IntegrityError as exc:
            errors.append(f"receipt #{i}: {exc}")
            continue
        if not receipt.verify(host_key):
            errors.append(f"receipt #{i}: not signed by the host key")
        elif receipt.session != record.meta.get("session"):
            errors.append(f"receipt #{i}: belongs to another session")
        elif receipt.seq > last:
            errors.append(f"the integrity log is truncated: the host receipted event "
                          f"{receipt.seq} but the log ends at {last}")
        elif receipt.seq not in by_seq or by_seq[receipt.seq].hash != receipt.hash:
            errors.append(f"receipt #{i}: event {receipt.seq} differs from what the host "
                          f"receipted")
    return errors


def _check_history(record: SessionRecord) -> tuple[list[str], str | None]:
    """Errors in the document history, and the final code (None when it cannot be replayed)."""
    for expected, row in enumerate(record.updates):
        if row.seq != expected:
            return [f"the document history has a hole or reorder at update {expected}"], None
    doc: Doc[Any] = Doc()
    for row in record.updates:
        try:
            apply_update_checked(doc, row.data)
        except ValueError as exc:  # bad update bytes (pycrdt may even panic on them)
            return [f"the document history cannot be replayed at update {row.seq}: {exc}"], None
    return [], str(doc.get("code", type=Text))


def _provenance(record: SessionRecord, log: LogCheck, final: str | None,
                evaluation: Evaluation | None) -> Provenance | None:
    """The code's provenance; with a policy that weighs it, its penalty in `evaluation`."""
    if final is None:
        return None
    try:
        prov = from_record(record, log, final_text=final)
    except Exception:  # information only: a fault here must not take verification down
        log_.exception("verify: the code's provenance could not be computed")
        return None
    text = record.meta.get("policy")
    weight, cap = policy_weight(text if isinstance(text, str) else None)
    share = prov.share("candidate", "burst") + prov.share("candidate", "transcription")
    if evaluation is not None and weight > 0 and share > 0:
        penalty = round(min(cap, weight * share * 10), 2)
        evaluation.explanation.append({
            "kind": "provenance", "occurrences": len(prov.bursts) + len(prov.transcriptions),
            "seconds": 0.0, "penalty": penalty,
            "why": f"{100 * share:.0f} % of the final code inserted in bursts or typed at a "
                   f"transcription cadence × {weight:g} per 10 %, capped at {cap:g}"})
        evaluation.score = max(0, min(100, round(evaluation.score - penalty)))
    return prov


def _restarts(record: SessionRecord, log: LogCheck, evaluation: Evaluation | None
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """Each restart as JSON, with what the evaluation counted, and the errors in the host's
    restart entries."""
    arrivals = log.arrivals if len(log.arrivals) == len(log.events) else None
    found: list[Restart] = restarts(record, log.events, arrivals)
    errors = [f"the host's restart entry at {r.at:.3f}: {r.problem}"
              for r in found if r.side == "host" and r.problem]
    problem = windows_problem(record, found)
    if problem:
        errors.append(problem)
    counted = {(r.side, r.seq if r.side == "candidate" else r.at): r
               for r in (evaluation.restarts if evaluation else [])}
    out = []
    for r in found:
        item = r.to_json()
        c = counted.get((r.side, r.seq if r.side == "candidate" else r.at))
        item["measured_s"] = c.away if c else None
        item["penalty"] = c.penalty if c else 0.0
        out.append(item)
    return out, errors


def verify_record(record: SessionRecord, *, expected_host: str | None = None) -> Verdict:
    errors: list[str] = []
    session = record.meta.get("session")
    if not isinstance(session, str) or not session:
        errors.append("the record has no session id")
        session = ""
    host_key = host_key_of(record)
    device_key = _key(record, "device_key")
    host_fp = fingerprint(host_key) if host_key and len(host_key) == 32 else None
    if host_fp is None:
        errors.append("the record has no valid host key")
    elif expected_host and host_fp != expected_host.upper():
        errors.append(f"the session was sealed by host key {host_fp}, not {expected_host}")

    manifest: dict[str, Any] | None = None
    if record.seal is None:
        errors.append("the session is not sealed (it may still be running, or was cut short)")
    elif host_key is not None:
        manifest, reason = open_seal(record.seal, host_key)
        if reason:
            errors.append(reason)
        else:
            assert manifest is not None
            errors += _compare_seal(manifest, compute_manifest(record))

    raws = [raw for _, raw in record.envelopes]
    clock, links = clock_rule(record.meta)
    admitted: list[dict[str, Any]] = []
    if device_key is None:
        log = LogCheck(events=[], errors=[], head="")
        if raws:
            errors.append("the record has events but no pinned candidate device key")
    else:
        # devices the interviewer admitted in place of the first (`core.admission`)
        found = admissions(record.private, session, host_key)
        admitted = [a.to_json() for a in found]
        rotations, device_errors = key_schedule(device_key, found)
        errors += device_errors
        log = check_log(session, device_key, raws, arrivals=[t for t, _ in record.envelopes],
                        clock=clock, links=links, rotations=rotations)
        errors += log.errors
    if host_key is not None:
        errors += _check_receipts(record, host_key, log)
    history_errors, final = _check_history(record)
    errors += history_errors
    runs = check_runs(record.runs)  # every run's verdicts recomputed from its own record
    errors += runs.errors

    evaluation = None
    end = manifest.get("sealed_at") if manifest else None
    try:
        policy_text = record.meta.get("policy")
        policy = Policy.from_toml(policy_text) if isinstance(policy_text, str) else \
            Policy.default()
    except PolicyError as exc:
        errors.append(f"the session's policy is invalid: {exc}")
    else:
        evaluation = evaluate_session(
            record.meta, log.events, policy, arrivals=log.arrivals,
            end_t=end if isinstance(end, int | float) else None,
        )
    provenance = _provenance(record, log, final, evaluation)
    restart_list, restart_errors = _restarts(record, log, evaluation)
    errors += restart_errors
    return Verdict(
        valid=not errors, errors=errors, events=len(log.events), session=session,
        host=host_fp, candidate=fingerprint(device_key) if device_key else None,
        sealed=record.seal is not None, evaluation=evaluation, log=log,
        refusals=record.refusals, runs=[r.to_json() for r in runs.runs],
        provenance=provenance,
        sealed_at=float(end) if isinstance(end, int | float) else None,
        restarts=restart_list, admissions=admitted,
    )

