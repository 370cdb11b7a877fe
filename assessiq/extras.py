"""Which of the package's extras each command needs, and the one line that says so.

AssessIQ installs per role (pyproject.toml, sizes in docs/install.md): `host` for the
interviewer, `candidate` for the candidate, `app` for both on one machine (the demo, the
tests), `verify` to check a session file, and nothing extra for the signaling server and the
sandbox. A command whose libraries are not installed ends with one line naming the extra
that brings them ("face analysis is not installed: pip install 'assessiq[candidate]'"),
never an ImportError. The check only looks modules up (`importlib.util.find_spec`); it imports
nothing, so it costs a few milliseconds.
"""

from __future__ import annotations

import importlib.util

__all__ = ["COMMANDS", "CORE", "FEATURES", "missing"]

# feature: (top-level modules it needs, what it is called in the message)
FEATURES: dict[str, tuple[tuple[str, ...], str]] = {
    "core": (("cryptography", "pycrdt"), "AssessIQ's core (keys, invites, session files)"),
    "verify": (("cryptography", "pycrdt"), "checking a session file"),
    "apps": (("nicegui", "aiortc", "av", "numpy", "PIL", "zeroconf", "markdown2",
              "sounddevice", "qrcode", "cryptography", "pycrdt"), "the interview app"),
    "face": (("mediapipe", "cv2"), "face analysis"),
}

# command: (the features it needs, the extra to install for them); any other command needs
# the core (`CORE`)
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "demo": (("apps", "face"), "app"),
    "host": (("apps",), "host"),
    "join": (("apps", "face"), "candidate"),
    "proctor": (("face",), "candidate"),
    "replay": (("apps",), "host"),
    "devices": (("apps",), "host"),
    "verify": (("verify",), "verify"),
}
CORE: tuple[tuple[str, ...], str] = (("core",), "verify")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        return False


def missing(command: str | None) -> str | None:
    """None when everything `command` needs is installed; otherwise the one line to show."""
    if command is None:
        return None
    features, extra = COMMANDS.get(command, CORE)
    for feature in features:
        modules, what = FEATURES[feature]
        if not all(_installed(m) for m in modules):
            return f"{what} is not installed: pip install 'assessiq[{extra}]'"
    return None
