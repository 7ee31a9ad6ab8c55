"""The set-up a newcomer runs: `make test` makes sure the grader's sandbox is there, or says in one line
what to run; `make lab` never needs it."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from notebooks import ROOT

SCRIPT = ROOT / "scripts" / "ensure-system-packages.sh"


def _as_a_user(env: dict) -> subprocess.CompletedProcess:
    """Run the script as a user who cannot install packages (nobody, when the tests run as root)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / SCRIPT.name  # a copy nobody can read (the checkout may be private to root)
        shutil.copy(SCRIPT, script)
        os.chmod(tmp, 0o755)
        os.chmod(script, 0o755)
        cmd = ["bash", str(script)]
        if os.getuid() == 0:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=tmp)


def _as_a_user_without_bwrap() -> subprocess.CompletedProcess:
    return _as_a_user({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BWRAP": "no-such-bwrap-for-this-test",
                       "CHROMIUM": "no-such-chromium-for-this-test"})


def test_without_bubblewrap_a_user_gets_one_line_saying_what_to_run():
    proc = _as_a_user_without_bwrap()
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == ("make test needs bubblewrap chromium (the grader's sandbox and the browser tests): run "
                           "'sudo apt-get install bubblewrap chromium', then 'make test' again\n")


def test_with_bubblewrap_there_is_nothing_to_do():
    proc = subprocess.run(["bash", str(SCRIPT)], env={"PATH": os.environ["PATH"], "BWRAP": "bash", "CHROMIUM": "sh"},
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_only_what_is_missing_is_named():
    proc = _as_a_user({"PATH": os.environ["PATH"], "BWRAP": "bash", "CHROMIUM": "no-such-chromium-for-this-test"})
    assert proc.returncode == 1 and "'sudo apt-get install chromium'" in proc.stderr, proc.stderr


def test_make_test_checks_the_system_packages_and_make_lab_does_not():
    def prerequisites(target: str) -> str:
        out = subprocess.run(["make", "-pn", "-C", str(ROOT), target], capture_output=True, text=True).stdout
        return next(line for line in out.splitlines() if line.startswith(f"{target}:"))

    assert "system-packages" in prerequisites("test").split(":", 1)[1].split()
    for target in ("lab", "workspace", "release-if-stale"):
        assert "system-packages" not in prerequisites(target), target
