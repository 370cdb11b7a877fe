"""Run untrusted code: one API and Piston's result shape over a local sandbox or Piston."""

from sandbox.backend import Backend, default_backend, run, runtimes
from sandbox.errors import (
    BackendUnavailableError,
    DockerUnavailableError,
    ImagePullError,
    InvalidRequestError,
    PistonError,
    SandboxError,
    UnknownRuntimeError,
    UnsafePathError,
)
from sandbox.local import LocalBackend
from sandbox.models import RunRequest, RunResult, Runtime, SourceFile, StageResult

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "DockerUnavailableError",
    "ImagePullError",
    "InvalidRequestError",
    "LocalBackend",
    "PistonError",
    "RunRequest",
    "RunResult",
    "Runtime",
    "SandboxError",
    "SourceFile",
    "StageResult",
    "UnknownRuntimeError",
    "UnsafePathError",
    "default_backend",
    "run",
    "runtimes",
]
