"""Host-side file actions on sandbox paths, none of which follows a link.

Judge0's CVE-2024-28185 and CVE-2024-28189 were host code following symlinks the sandboxed
program planted in its workdir. Under bubblewrap the host never touches the workdir at all (it is
a tmpfs inside the sandbox, filled from memory files); only the weaker fallback keeps a host
directory, and every action on it goes through this module: directory fds opened with
`O_NOFOLLOW`, files created with `O_CREAT | O_EXCL | O_NOFOLLOW`, and removal by the fd-based
`shutil.rmtree`, which never follows links.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from sandbox.errors import UnsafePathError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - every Linux has it
    raise ImportError("this platform's shutil.rmtree can follow symlinks; refusing to run")


def open_dir(name: str, dir_fd: int | None = None) -> int:
    """Open a directory without following a link at its last component."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(f"refusing {name!r}: it is a link or not a directory") from exc
        raise


def write_new_file(dir_fd: int, relpath: str, data: bytes, *, mode: int = 0o644,
                   owner: int | None = None) -> None:
    """Create `relpath` under `dir_fd` (making parent dirs) without following any link.

    Refuses when any component exists as a link, or when the file already exists.
    """
    parts = relpath.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafePathError(f"refusing path {relpath!r}")
    fds: list[int] = []
    try:
        current = dir_fd
        for part in parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=current)
            current = open_dir(part, current)
            fds.append(current)
            if owner is not None:
                os.fchown(current, owner, owner)
        try:
            fd = os.open(parts[-1], _NEW_FILE_FLAGS, mode, dir_fd=current)
        except FileExistsError as exc:
            raise UnsafePathError(f"refusing to overwrite existing {relpath!r}") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(f"refusing {relpath!r}: it is a link") from exc
            raise
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if owner is not None:
                os.fchown(fd, owner, owner)
        finally:
            os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


class HostWorkdir:
    """A fresh directory on the host for one run of the fallback mode; remove with `close()`."""

    def __init__(self, owner: int | None = None, parent: str | None = None) -> None:
        self._outer = Path(tempfile.mkdtemp(prefix="assessiq-sandbox-", dir=parent))
        # The outer dir is ours; the sandbox uid may only pass through it to its own workdir.
        os.chmod(self._outer, 0o711)
        outer_fd = open_dir(str(self._outer))
        try:
            os.mkdir("box", 0o700, dir_fd=outer_fd)
            self.fd = open_dir("box", outer_fd)
        finally:
            os.close(outer_fd)
        if owner is not None:
            os.fchown(self.fd, owner, owner)
        self.owner = owner
        self.path = self._outer / "box"

    def write(self, relpath: str, data: bytes, mode: int = 0o644) -> None:
        write_new_file(self.fd, relpath, data, mode=mode, owner=self.owner)

    def close(self) -> None:
        """Remove everything, following no link the sandbox may have planted."""
        with contextlib.suppress(OSError):
            _make_dirs_writable(self.fd)
        os.close(self.fd)
        remove_tree(self._outer)


def _make_dirs_writable(top_fd: int) -> None:
    """Let a non-root host delete dirs the sandbox made read-only (fchmod via no-follow fds)."""
    os.fchmod(top_fd, 0o700)
    for _root, dirs, _files, root_fd in os.fwalk(".", dir_fd=top_fd, follow_symlinks=False):
        for name in dirs:
            with contextlib.suppress(OSError):
                fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
                try:
                    if stat.S_ISDIR(os.fstat(fd).st_mode):
                        os.fchmod(fd, 0o700)
                finally:
                    os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove a directory tree; a link anywhere (even `path` itself) is removed, not followed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    shutil.rmtree(path)
