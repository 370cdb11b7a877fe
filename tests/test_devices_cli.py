"""`assessiq devices`: missing capture devices are a plain message, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys


def test_devices_check_reports_missing_devices_plainly():
    result = subprocess.run([sys.executable, "-m", "assessiq", "devices", "--check", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    found = json.loads(result.stdout)
    for kind, plural in (("camera", "cameras"), ("microphone", "microphones")):
        problem = found["problems"].get(kind)
        # either the default device opened, or we are told why in one line
        assert (found[plural] and problem is None) or (problem and "\n" not in problem)
        if not found[plural]:
            assert f"no {kind}" in problem


def test_devices_text_output_says_the_interview_goes_on():
    result = subprocess.run([sys.executable, "-m", "assessiq", "devices", "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "cameras:" in result.stdout
    if "cameras: none found" in result.stdout:
        assert "the interview still works without it" in result.stdout
