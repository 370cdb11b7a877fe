"""Tamper tests: generated mutations of sealed session records, every one caught by verify.

Two sealed sessions (different host and device keys) are built through the real store, log
and seal. 10,000+ mutations are generated from a fixed seed, split over two worker processes:
byte flips in update data, envelope, receipt and seal bodies and signatures; reorder, delete,
duplicate and truncate of updates, envelopes and receipts; forged envelopes (another key, and
the real device key continuing the log after the seal); the other session's events, receipts
and seal swapped in; the document history edited with other *valid* updates; changed times,
runs, host-only data and metadata; and random combinations. A mutation that leaves the record
equal to the original is not counted; every other one must make `verify_record` say invalid,
and the untouched records must stay valid throughout.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from core_factories import BuiltSession, build_session

from assessiq.cli import main as cli_main
from assessiq.core.encoding import b64e, canonical_json, pack_signed, unpack_signed
from assessiq.core.identity import Identity
from assessiq.core.integrity import Envelope, EventSigner, Receipt, make_receipt
from assessiq.core.record import SessionRecord
from assessiq.core.seal import SEAL_DOMAIN, compute_manifest
from assessiq.core.store import UpdateRow
from assessiq.core.verify import verify_record

N_MUTATIONS = 10_000
WORKERS = 2
SEED = 20_240_601


@dataclass
class Ctx:
    """What a mutator may use: the target session, the other one, and an attacker's key."""

    me: BuiltSession
    other: BuiltSession
    attacker: Identity


Mutator = Callable[[SessionRecord, random.Random, Ctx], None]

# Filled in the parent before the pool forks; workers read it (keys do not pickle).
_CTXS: list[Ctx] = []


def _clone(rec: SessionRecord) -> SessionRecord:
    return SessionRecord(
        meta=copy.deepcopy(rec.meta), updates=list(rec.updates), envelopes=list(rec.envelopes),
        receipts=list(rec.receipts), runs=copy.deepcopy(rec.runs),
        private=copy.deepcopy(rec.private), seal=rec.seal,
    )


def _flip(data: bytes, rng: random.Random, lo: int = 0, hi: int | None = None) -> bytes:
    hi = len(data) if hi is None else hi
    b = bytearray(data)
    i = rng.randrange(lo, hi)
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _flip_part(raw: bytes, rng: random.Random, part: str) -> bytes:
    """Flip a bit in the signed body or in the signature text of a `pack_signed` blob."""
    dot = raw.rindex(b".")
    return _flip(raw, rng, 0, dot) if part == "body" else _flip(raw, rng, dot + 1)


def _delta(rng: random.Random) -> float:
    return rng.choice([-1, 1]) * rng.choice([0.001, 0.5, 1.0, 5.0, 3600.0])


def _pick(rng: random.Random, n: int) -> int:
    return rng.randrange(n)


def _two(rng: random.Random, n: int) -> tuple[int, int]:
    i, j = rng.sample(range(n), 2)
    return min(i, j), max(i, j)


# --- document history ---------------------------------------------------------------------
def upd_flip(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.updates))
    r.updates[i] = replace(r.updates[i], data=_flip(r.updates[i].data, rng))


def upd_time(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.updates))
    r.updates[i] = replace(r.updates[i], t=r.updates[i].t + _delta(rng))


def upd_origin(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.updates))
    r.updates[i] = replace(r.updates[i], origin="remote" if r.updates[i].origin == "host"
                           else "host")


def upd_seq(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.updates))
    r.updates[i] = replace(r.updates[i], seq=r.updates[i].seq + rng.choice([-2, -1, 1, 7]))


def upd_reorder(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i, j = _two(rng, len(r.updates))
    r.updates[i], r.updates[j] = r.updates[j], r.updates[i]


def upd_reorder_renumbered(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    """Swap two updates' contents but keep the sequence numbers in order."""
    i, j = _two(rng, len(r.updates))
    a, b = r.updates[i], r.updates[j]
    r.updates[i], r.updates[j] = replace(b, seq=a.seq), replace(a, seq=b.seq)


def upd_delete(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    del r.updates[_pick(rng, len(r.updates))]


def upd_delete_renumbered(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    del r.updates[_pick(rng, len(r.updates))]
    r.updates[:] = [replace(u, seq=k) for k, u in enumerate(r.updates)]


def upd_duplicate(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.updates))
    r.updates.insert(rng.randrange(len(r.updates) + 1), r.updates[i])


def upd_truncate(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    del r.updates[len(r.updates) - rng.randint(1, len(r.updates)):]


def upd_replace_valid(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    """Edit history: replace an update by another valid update (of this doc or the other)."""
    i = _pick(rng, len(r.updates))
    pool = c.me.alt_updates + [u.data for u in c.other.record.updates]
    r.updates[i] = replace(r.updates[i], data=rng.choice(pool))


def upd_append_valid(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    last = r.updates[-1]
    r.updates.append(UpdateRow(last.seq + 1, last.t + 0.2, "host", rng.choice(c.me.alt_updates)))


def upd_swap_other(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    r.updates[:] = list(c.other.record.updates)


# --- integrity log --------------------------------------------------------------------------
def env_flip_body(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.envelopes))
    t, raw = r.envelopes[i]
    r.envelopes[i] = (t, _flip_part(raw, rng, "body"))


def env_flip_sig(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.envelopes))
    t, raw = r.envelopes[i]
    r.envelopes[i] = (t, _flip_part(raw, rng, "sig"))


def env_received_at(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.envelopes))
    t, raw = r.envelopes[i]
    r.envelopes[i] = (t + _delta(rng), raw)


def env_reorder(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i, j = _two(rng, len(r.envelopes))
    r.envelopes[i], r.envelopes[j] = r.envelopes[j], r.envelopes[i]


def env_delete(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    del r.envelopes[_pick(rng, len(r.envelopes))]


def env_duplicate(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.envelopes))
    r.envelopes.insert(rng.randrange(i, len(r.envelopes) + 1), r.envelopes[i])


def env_truncate(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    del r.envelopes[len(r.envelopes) - rng.randint(1, len(r.envelopes)):]


def env_truncate_with_receipts(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    """Cut the log and its receipts together (consistent with each other, not the seal)."""
    k = rng.randint(1, len(r.envelopes))
    del r.envelopes[len(r.envelopes) - k:]
    del r.receipts[len(r.receipts) - k:]


def _forge(c: Ctx, key: Identity, prefix: list[Envelope], rng: random.Random) -> Envelope:
    signer = EventSigner.resume(c.me.session, key, prefix)
    kind = rng.choice(["proctor.heartbeat", "session.note", "face.absent"])
    data = {"phase": "instant"} if kind == "session.note" else {}
    return signer.sign(kind, data, now=(prefix[-1].t + 1.0) if prefix else None)


def env_forge_other_key(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    """An attacker's key writes a well-formed continuation at some position (replace or
    insert), chained to the real events before it."""
    i = rng.randrange(len(c.me.envelopes) + 1)
    env = _forge(c, c.attacker, c.me.envelopes[:i], rng)
    at = r.envelopes[i - 1][0] + 0.01 if i else r.envelopes[0][0]
    if i < len(r.envelopes) and rng.random() < 0.5:
        r.envelopes[i] = (at, env.raw)
    else:
        r.envelopes.insert(i, (at, env.raw))


def env_forge_device_after_seal(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    """The real device key continues the log after the seal (maybe with a forged receipt)."""
    env = _forge(c, c.me.device, c.me.envelopes, rng)
    r.envelopes.append((env.t + 0.04, env.raw))
    if rng.random() < 0.5:
        r.receipts.append(make_receipt(c.attacker, env, now=env.t + 0.05).raw)


def env_swap_other_one(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, min(len(r.envelopes), len(c.other.record.envelopes)))
    r.envelopes[i] = c.other.record.envelopes[i]


def env_swap_other_all(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    r.envelopes[:] = list(c.other.record.envelopes)
    if rng.random() < 0.5:
        r.receipts[:] = list(c.other.record.receipts)


# --- receipts ------------------------------------------------------------------------------
def rcp_flip_body(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.receipts))
    r.receipts[i] = _flip_part(r.receipts[i], rng, "body")


def rcp_flip_sig(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, len(r.receipts))
    r.receipts[i] = _flip_part(r.receipts[i], rng, "sig")


def rcp_reorder(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i, j = _two(rng, len(r.receipts))
    r.receipts[i], r.receipts[j] = r.receipts[j], r.receipts[i]


def rcp_delete(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    del r.receipts[_pick(rng, len(r.receipts))]


def rcp_duplicate(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    r.receipts.insert(rng.randrange(len(r.receipts) + 1), rng.choice(r.receipts))


def rcp_truncate(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    del r.receipts[len(r.receipts) - rng.randint(1, len(r.receipts)):]


def rcp_swap_other(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    i = _pick(rng, min(len(r.receipts), len(c.other.record.receipts)))
    r.receipts[i] = c.other.record.receipts[i]


# --- seal --------------------------------------------------------------------------------
def seal_flip_body(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    if r.seal is None:
        raise ValueError("no seal left to mutate")
    r.seal = _flip_part(r.seal, rng, "body")


def seal_flip_sig(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    if r.seal is None:
        raise ValueError("no seal left to mutate")
    r.seal = _flip_part(r.seal, rng, "sig")


def seal_drop(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    r.seal = None


def seal_swap_other(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    r.seal = c.other.record.seal


def seal_resign_other_key(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    """The same manifest, or a fresh one over the tampered record, signed by another key."""
    if r.seal is None:
        raise ValueError("no seal left to mutate")
    body, _ = unpack_signed(r.seal)
    if rng.random() < 0.5:
        env_delete(r, rng, c)
        manifest = compute_manifest(r)
        manifest["sealed_at"] = json.loads(body)["sealed_at"]
        body = canonical_json(manifest)
    r.seal = pack_signed(body, c.attacker.sign(SEAL_DOMAIN, body))


def sig_malleate(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    """Change only the unused low bits of a signature's last base64 character: the same
    signature bytes, a different file. One canonical encoding is accepted, no other."""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    def malleate(raw: bytes) -> bytes:
        v = alphabet.index(raw[-1])
        w = rng.choice([x for x in range(64) if x >> 4 == v >> 4 and x != v])
        return raw[:-1] + alphabet[w : w + 1]

    where = rng.choice(["seal", "envelope", "receipt"])
    if where == "seal" and r.seal is not None:
        r.seal = malleate(r.seal)
    elif where == "envelope":
        i = _pick(rng, len(r.envelopes))
        r.envelopes[i] = (r.envelopes[i][0], malleate(r.envelopes[i][1]))
    else:
        i = _pick(rng, len(r.receipts))
        r.receipts[i] = malleate(r.receipts[i])


# --- runs, host-only data, metadata ---------------------------------------------------------
def run_edit(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    run = r.runs[0]
    what = rng.choice(["stdout", "code", "t", "id", "request"])
    if what == "stdout":
        run["result"]["run"]["stdout"] = "ok 5/5\n"
    elif what == "code":
        run["result"]["run"]["code"] = 1
    elif what == "t":
        run["t"] += _delta(rng)
    elif what == "id":
        run["id"] = "run-2"
    else:
        run["request"]["tests"] = "hidden"


def run_add_delete(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    if rng.random() < 0.5:
        r.runs.clear()
    else:
        r.runs.append({**copy.deepcopy(r.runs[0]), "id": "run-9"})


def priv_edit(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    what = rng.choice(["text", "kind", "t", "delete", "add", "passed"])
    if what == "text":
        r.private[0]["value"]["text"] = "weak candidate"
    elif what == "kind":
        r.private[0]["kind"] = "score"
    elif what == "t":
        r.private[1]["t"] += _delta(rng)
    elif what == "delete":
        del r.private[_pick(rng, len(r.private))]
    elif what == "add":
        r.private.append({"kind": "note", "t": r.private[-1]["t"] + 1, "value": {"text": "x"}})
    else:
        r.private[1]["value"]["passed"] = 5


def meta_edit(r: SessionRecord, rng: random.Random, c: Ctx) -> None:
    what = rng.choice(["created", "invite", "role", "policy", "device", "host", "session",
                       "delete", "add"])
    m = r.meta
    if what == "created":
        m["created"] += _delta(rng)
    elif what == "invite":
        m["invite"] = c.other.record.meta["invite"]
    elif what == "role":
        m["role"] = "candidate"
    elif what == "policy":
        m["policy"] = m["policy"].replace("weight = 10", "weight = 0", 1)
    elif what == "device":
        m["device_key"] = rng.choice([c.other.record.meta["device_key"],
                                      b64e(c.attacker.public_key)])
    elif what == "host":
        m["host_key"] = rng.choice([c.other.record.meta["host_key"],
                                    b64e(c.attacker.public_key)])
    elif what == "session":
        m["session"] = c.other.session
    elif what == "delete":
        del m[rng.choice([k for k in m if k != "schema"])]
    else:
        m["label"] = "someone else"


MUTATORS: list[tuple[str, Mutator]] = [(f.__name__, f) for f in [
    upd_flip, upd_time, upd_origin, upd_seq, upd_reorder, upd_reorder_renumbered, upd_delete,
    upd_delete_renumbered, upd_duplicate, upd_truncate, upd_replace_valid, upd_append_valid,
    upd_swap_other,
    env_flip_body, env_flip_sig, env_received_at, env_reorder, env_delete, env_duplicate,
    env_truncate, env_truncate_with_receipts, env_forge_other_key, env_forge_device_after_seal,
    env_swap_other_one, env_swap_other_all,
    rcp_flip_body, rcp_flip_sig, rcp_reorder, rcp_delete, rcp_duplicate, rcp_truncate,
    rcp_swap_other,
    seal_flip_body, seal_flip_sig, seal_drop, seal_swap_other, seal_resign_other_key, sig_malleate,
    run_edit, run_add_delete, priv_edit, meta_edit,
]]


def mutate(rec: SessionRecord, rng: random.Random, ctx: Ctx) -> tuple[SessionRecord, str]:
    """A mutated copy of `rec` and the names of what was done (1 to 3 mutators)."""
    out = _clone(rec)
    n = 1 if rng.random() < 0.8 else rng.randint(2, 3)
    names = []
    for _ in range(n):
        name, fn = rng.choice(MUTATORS)
        try:
            fn(out, rng, ctx)
        except (ValueError, IndexError, KeyError):
            continue  # its target was emptied by an earlier mutator in this combination
        names.append(name)
    return out, "+".join(names)


def _worker(job: tuple[int, int]) -> tuple[int, int, Counter[str], list[str]]:
    """Run `quota` effective mutations with seed `SEED + worker`; (effective, skipped,
    counts per mutator, failures)."""
    worker, quota = job
    rng = random.Random(SEED + worker)
    effective = skipped = 0
    counts: Counter[str] = Counter()
    failures: list[str] = []
    while effective < quota:
        ctx = _CTXS[rng.randrange(len(_CTXS))]
        original = ctx.me.record
        if effective % 250 == 0:  # the untouched record stays valid all along
            verdict = verify_record(_clone(original))
            if not verdict.valid:
                failures.append(f"untouched record rejected: {verdict.errors}")
        mutated, what = mutate(original, rng, ctx)
        if mutated == original:
            skipped += 1
            continue
        effective += 1
        for name in filter(None, what.split("+")):
            counts[name] += 1
        try:
            verdict = verify_record(mutated)
        except Exception as exc:  # a crash is a failure too, never a pass
            failures.append(f"{what}: verify raised {type(exc).__name__}: {exc}")
            continue
        if verdict.valid or not verdict.errors:
            failures.append(f"{what}: NOT detected")
    return effective, skipped, counts, failures


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> list[Ctx]:
    d = tmp_path_factory.mktemp("tamper")
    a = build_session(d / "a.aiq", seed=1)
    b = build_session(d / "b.aiq", seed=2, n_heartbeats=8)
    attacker = Identity.generate()
    return [Ctx(a, b, attacker), Ctx(b, a, attacker)]


def test_base_records_are_valid_and_distinct(sessions: list[Ctx]) -> None:
    a, b = sessions[0].me, sessions[0].other
    for s in (a, b):
        verdict = verify_record(s.record)
        assert verdict.valid, verdict.errors
        assert verdict.events == len(s.envelopes)
        assert len(s.record.updates) == 40 and s.record.seal is not None
    assert a.host.public_key != b.host.public_key and a.device.public_key != b.device.public_key
    assert a.session != b.session


def test_ten_thousand_mutations_all_detected(sessions: list[Ctx]) -> None:
    _CTXS[:] = sessions
    quota = -(-N_MUTATIONS // WORKERS)
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_worker, [(w, quota) for w in range(WORKERS)]))
    effective = sum(r[0] for r in results)
    counts: Counter[str] = sum((r[2] for r in results), Counter())
    failures = [f for r in results for f in r[3]]
    assert effective >= N_MUTATIONS
    assert not failures, f"{len(failures)} failures, e.g. {failures[:10]}"
    # every kind of mutation was really exercised, many times
    for name, _ in MUTATORS:
        assert counts[name] >= 100, (name, counts[name])


def test_reseal_by_another_host_is_caught_by_the_expected_fingerprint(
    sessions: list[Ctx],
) -> None:
    """The honest limit: someone who replaces the host key in the file and re-seals with their
    own key makes a self-consistent record. It names a different host, and `expected_host`
    (`assessiq verify --host-key`) refuses it."""
    c = sessions[0]
    rec = _clone(c.me.record)
    rec.meta["host_key"] = b64e(c.attacker.public_key)
    manifest = compute_manifest(rec)
    manifest["sealed_at"] = json.loads(unpack_signed(c.me.record.seal or b"")[0])["sealed_at"]
    body = canonical_json(manifest)
    rec.seal = pack_signed(body, c.attacker.sign(SEAL_DOMAIN, body))
    # its receipts are still the real host's, so even without a fingerprint it is refused
    assert not verify_record(rec).valid
    # an attacker who also re-signs every receipt gets past the offline checks ...
    rec.receipts = [make_receipt(c.attacker, e, now=Receipt.decode(raw).at).raw
                    for e, raw in zip(c.me.envelopes, c.me.record.receipts, strict=True)]
    manifest = compute_manifest(rec)
    manifest["sealed_at"] = json.loads(body)["sealed_at"]
    body = canonical_json(manifest)
    rec.seal = pack_signed(body, c.attacker.sign(SEAL_DOMAIN, body))
    forged = verify_record(rec)
    assert forged.host == c.attacker.fingerprint != c.me.host.fingerprint
    # ... but not past the interviewer's fingerprint
    refused = verify_record(rec, expected_host=c.me.host.fingerprint)
    assert not refused.valid
    assert any("sealed by host key" in e for e in refused.errors)
    assert verify_record(c.me.record, expected_host=c.me.host.fingerprint).valid


def _written(rec: SessionRecord, path: Path) -> SessionRecord:
    rec.write(path)
    return SessionRecord.load(path)


def test_mutated_files_fail_the_cli(sessions: list[Ctx], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Mutations written to real session files, checked by `assessiq verify FILE --json`."""
    rng = random.Random(SEED)
    checked = 0
    attempts = 0
    while checked < 40:
        attempts += 1
        assert attempts < 400
        ctx = sessions[attempts % 2]
        mutated, what = mutate(ctx.me.record, rng, ctx)
        path = tmp_path / f"m{attempts}.aiq"
        if _written(mutated, path) == ctx.me.record:
            continue  # e.g. a sequence number renumbered back on write: not a change on disk
        checked += 1
        code = cli_main(["verify", str(path), "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 1, what
        assert out["valid"] is False and out["errors"], what
    # the untouched record, written out, verifies
    good = tmp_path / "good.aiq"
    assert _written(sessions[0].me.record, good) == sessions[0].me.record
    assert cli_main(["verify", str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_cli_subprocess_exit_codes(sessions: list[Ctx], tmp_path: Path) -> None:
    """The installed console script, in a child process: 0 valid, 1 tampered, 2 unreadable."""
    good = tmp_path / "good.aiq"
    sessions[0].me.record.write(good)
    bad = tmp_path / "bad.aiq"
    mutated = _clone(sessions[0].me.record)
    env_delete(mutated, random.Random(1), sessions[0])
    mutated.write(bad)
    junk = tmp_path / "junk.aiq"
    junk.write_bytes(b"not a session file at all\n" * 10)
    cmd = [sys.executable, "-m", "assessiq", "verify"]
    codes = {}
    for name, path in (("good", good), ("bad", bad), ("junk", junk)):
        proc = subprocess.run([*cmd, str(path), "--json"], capture_output=True, text=True,
                              timeout=60)
        out = json.loads(proc.stdout)
        codes[name] = (proc.returncode, out["valid"])
        assert "Traceback" not in proc.stderr
    assert codes == {"good": (0, True), "bad": (1, False), "junk": (2, False)}
