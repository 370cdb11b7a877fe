"""The integrity event kinds and the data each carries.

Condition kinds (a state that starts and ends) carry in `data`:
    phase       "start" when the condition has held long enough to count (after the
                detector's hysteresis), "end" when it has cleared
    start       when the condition began, seconds since the Unix epoch
    end         when it cleared (only with phase "end")
    duration    end - start in seconds (only with phase "end")
    confidence  0..1, how sure the detector is (1.0 for browser signals)

Instant kinds (something that happened once) carry `phase: "instant"` plus their own fields.
`proctor.heartbeat` and `browser.heartbeat` prove the producer is alive; a gap between
heartbeats longer than the policy allows is itself a finding. Info kinds (`camera.check`)
report a fact once, with `phase: "instant"`; the policy has no rule for them and they never
count towards warnings, flags or the score.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONDITION", "HEARTBEAT", "INFO", "INSTANT", "KINDS", "KindInfo", "is_known"]

CONDITION = "condition"
INSTANT = "instant"
HEARTBEAT = "heartbeat"
INFO = "info"  # a fact reported once (the camera check's result): no policy rule, no score


@dataclass(frozen=True)
class KindInfo:
    """What an event kind means and what its `data` holds beyond the common fields."""

    name: str
    shape: str
    meaning: str
    fields: str = ""


KINDS: dict[str, KindInfo] = {
    k.name: k
    for k in [
        KindInfo("face.absent", CONDITION, "no face in front of the camera"),
        KindInfo("face.multiple", CONDITION, "more than one face in view", "faces: int"),
        KindInfo("gaze.away", CONDITION, "eyes turned away from the screen", "direction: str"),
        KindInfo(
            "head.turned", CONDITION, "head turned away past the calibrated pose",
            "yaw, pitch: float degrees relative to the calibration",
        ),
        KindInfo("camera.blocked", CONDITION, "lens covered or the frame too dark to see"),
        KindInfo("camera.frozen", CONDITION, "the camera keeps sending the same frame"),
        KindInfo("camera.off", CONDITION, "the candidate turned their camera off"),
        KindInfo("tab.hidden", CONDITION, "the interview tab was hidden (another tab or app)"),
        KindInfo("window.blur", CONDITION, "the interview window lost focus"),
        KindInfo("fullscreen.exit", CONDITION, "the candidate left fullscreen"),
        KindInfo(
            "paste", INSTANT, "text pasted into the editor",
            "chars: int; text: str only when the policy's [paste] include_text is on "
            "(at most its max_chars; truncated: bool)",
        ),
        KindInfo("copy", INSTANT, "text copied from the page", "chars: int"),
        KindInfo("devtools.shortcut", INSTANT, "a developer-tools shortcut was pressed", "key"),
        KindInfo("screens.multiple", INSTANT, "the browser reports more than one screen", "n"),
        KindInfo(
            "proctor.heartbeat", HEARTBEAT, "the proctor is running",
            "fps: float, analysed: int, dropped: int, cpu: float share of one core",
        ),
        KindInfo("browser.heartbeat", HEARTBEAT, "the candidate's page is open and watching"),
        KindInfo(
            "camera.check", INFO, "the result of the camera check before the interview",
            "result: \"calibrated\" | \"not calibrated\" | \"no camera\" | \"unavailable\"; "
            "text: str; frames: int; yaw, pitch: float degrees (when calibrated)",
        ),
        KindInfo("session.note", INSTANT, "a free-form note from the candidate's app", "text"),
        KindInfo(
            "session.resumed", INSTANT,
            "the candidate's app restarted and resumed the session (see `core.resume`); the "
            "policy's [resume] rule counts the time away, measured on the host's clock",
            "side: \"candidate\"; away_s: float seconds the app was gone (its claim); "
            "last_seen: epoch seconds, the newest moment its own session file proves it was "
            "alive; why: str, how it knows",
        ),
    ]
}


def is_known(kind: str) -> bool:
    """Whether `kind` is one of the documented kinds."""
    return kind in KINDS
