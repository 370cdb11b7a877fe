"""Judge0 CVE-2024-28185/28189 regressions: host-side file actions never follow a link.

The bubblewrap mode never touches a sandbox path on the host; the fallback keeps a host workdir,
so these tests plant links (by hand and from inside a sandboxed program) and check that every
host action refuses them or removes the link itself, never its target.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import BackendUnavailableError, LocalBackend, RunRequest, UnsafePathError
from sandbox.hostfs import HostWorkdir, remove_tree, write_new_file
from sandbox.isolation import tool


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_text("host secret")
    return d


def test_write_refuses_a_planted_symlink_file(tmp_path: Path, outside: Path):
    box = tmp_path / "box"
    box.mkdir()
    (box / "main.py").symlink_to(outside / "secret.txt")
    fd = os.open(box, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(UnsafePathError):
            write_new_file(fd, "main.py", b"overwritten")
    finally:
        os.close(fd)
    assert (outside / "secret.txt").read_text() == "host secret"


def test_write_refuses_a_symlinked_parent_directory(tmp_path: Path, outside: Path):
    box = tmp_path / "box"
    box.mkdir()
    (box / "src").symlink_to(outside)
    fd = os.open(box, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(UnsafePathError):
            write_new_file(fd, "src/evil.py", b"x")
    finally:
        os.close(fd)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_write_refuses_a_dangling_symlink(tmp_path: Path, outside: Path):
    box = tmp_path / "box"
    box.mkdir()
    (box / "a.py").symlink_to(outside / "created-through-link")
    fd = os.open(box, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(UnsafePathError):
            write_new_file(fd, "a.py", b"x")
    finally:
        os.close(fd)
    assert not (outside / "created-through-link").exists()


def test_write_refuses_climbing_names(tmp_path: Path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in ("../x", "a/../../x", "", "a//b"):
            with pytest.raises(UnsafePathError):
                write_new_file(fd, name, b"x")
    finally:
        os.close(fd)


def test_workdir_close_removes_links_not_targets(outside: Path):
    workdir = HostWorkdir()
    workdir.write("main.py", b"print(1)")
    (workdir.path / "to_dir").symlink_to(outside)
    (workdir.path / "to_file").symlink_to(outside / "secret.txt")
    os.link(outside / "secret.txt", workdir.path / "hard")
    nested = workdir.path / "n" / "m"
    nested.mkdir(parents=True)
    (nested / "up").symlink_to(outside)
    os.chmod(workdir.path / "n", 0o000)
    workdir.close()
    assert not workdir.path.exists()
    assert (outside / "secret.txt").read_text() == "host secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_remove_tree_given_a_symlink_removes_only_the_link(tmp_path: Path, outside: Path):
    link = tmp_path / "link"
    link.symlink_to(outside)
    remove_tree(link)
    assert not link.exists() and not link.is_symlink()
    assert (outside / "secret.txt").read_text() == "host secret"


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback drops to a sandbox uid only as root")
async def test_fallback_program_plants_links_and_host_cleanup_follows_none(outside: Path):
    backend = LocalBackend(isolation="fallback")
    source = (
        "import os\n"
        f"os.symlink({str(outside)!r}, 'dir_link')\n"
        f"os.symlink({str(outside / 'secret.txt')!r}, 'file_link')\n"
        "os.makedirs('deep/er'); os.symlink('/', 'deep/er/root')\n"
        "os.chmod('deep', 0)\n"
        "print('planted')\n"
    )
    result = await backend.run(RunRequest.single("python", source))
    assert result.run.stdout == "planted\n", result.run.to_dict()
    assert (outside / "secret.txt").read_text() == "host secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert "WEAK SANDBOX" in (result.run.message or "")


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback drops to a sandbox uid only as root")
async def test_fallback_is_weaker_but_limits_and_uid_hold(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ASSESSIQ_TEST_SECRET", "fallback-secret-1")
    backend = LocalBackend(isolation="fallback")
    loop = await backend.run(RunRequest.single("python", "while True: pass\n",
                                               run_timeout=2000, run_cpu_time=1000))
    assert loop.run.status == "TO"
    assert "WEAK SANDBOX" in (loop.run.message or "")
    probe = await backend.run(RunRequest.single(
        "python",
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', '27.1828'], start_new_session=True)\n"
        "print(os.getuid(), dict(os.environ))\n"
        "try:\n    open('/etc/shadow').read()\nexcept OSError as e:\n    print('blocked')\n"))
    uid = int(probe.run.stdout.split()[0])
    assert uid >= 1_000_000_000
    assert "fallback-secret-1" not in probe.run.stdout
    assert "blocked" in probe.run.stdout
    for entry in os.listdir("/proc"):  # the escaped daemon was killed by the uid sweep
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            assert b"27.1828" not in cmdline


def test_bwrap_required_but_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch):
    import sandbox.local as local_module

    monkeypatch.setattr(local_module, "tool", lambda name: None)
    with pytest.raises(BackendUnavailableError, match="apt install bubblewrap"):
        LocalBackend(isolation="bwrap")


@pytest.mark.skipif(tool("bwrap") is None, reason="bubblewrap is not installed")
def test_bwrap_mode_has_no_host_workdir():
    assert LocalBackend().isolation == "bwrap"
    assert LocalBackend().warning is None
