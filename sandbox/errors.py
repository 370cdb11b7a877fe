"""The sandbox's errors, flat: one base class and a few named cases a caller can act on.

User mistakes (a bad request, an unknown language) are `InvalidRequestError`s; a backend that
cannot run at all is a `BackendUnavailableError`; Piston's own 4xx/5xx answers are `PistonError`
carrying Piston's `message`. A program that misbehaves is never an exception: it is a result
with a status (`TO`, `OL`, `EL`, `SG`, `RE`, `XX`).
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base class of every error the sandbox raises."""


class InvalidRequestError(SandboxError, ValueError):
    """The run request is malformed (bad field, too large, unsafe file name ...)."""


class UnknownRuntimeError(InvalidRequestError):
    """No runtime matches the language and version; the message follows Piston's wording."""

    def __init__(self, language: str, version: str) -> None:
        super().__init__(f"{language}-{version} runtime is unknown")
        self.language = language
        self.version = version


class BackendUnavailableError(SandboxError):
    """The backend cannot run anything here (tool missing, server unreachable ...)."""


class DockerUnavailableError(BackendUnavailableError):
    """No Docker engine is reachable, so the Piston container cannot be started."""


class ImagePullError(BackendUnavailableError):
    """The Piston image could not be pulled."""


class UnsafePathError(SandboxError):
    """A host-side file action on a sandbox path was refused (a link, or a path that escapes)."""


class PistonError(SandboxError):
    """Piston answered with an error; `message` is Piston's own text."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"Piston answered {status_code}: {message}")
        self.status_code = status_code
        self.message = message
