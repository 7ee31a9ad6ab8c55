"""The sandbox a student's kernel runs in (bubblewrap), and its limits.

Inside, the kernel sees: the Python installation (read-only), a copy of the
student's notebook (read-only) in its home folder ``/home/student``, the
``course`` package (read-only, over any ``course/`` the student ships), the
probe package at ``/opt/grader`` (read-only), and its sockets' folder. Home
and ``/tmp`` are private in-memory folders of a fixed size, so writing files
can exhaust neither the host's disk nor its memory. It sees no source
notebook, no hidden check, no gradebook and no other student.
It has no network (a new network namespace holds only a loopback), its own
process namespace (everything it starts dies with it), and resource limits
on memory, processes, file sizes and open files.

When the grader runs as root, the kernel is moved to an unprivileged uid of
its own (one per concurrent job), so that the process limit counts only that
kernel's processes and threads.

Where bubblewrap cannot run, :func:`check_available` says why; the grader then
refuses untrusted code unless given ``--unsafe-no-sandbox``
(:data:`UNSAFE_WARNING` says what that gives up).
"""
from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .cgroups import join_prefix, slot_groups

HOME = "/home/student"
PROBE_ROOT = "/opt/grader"
#: first uid handed to sandboxed kernels when the grader runs as root
BASE_UID = 64000

UNSAFE_WARNING = (
    "WARNING: grading WITHOUT a sandbox (--unsafe-no-sandbox). Students' code runs as you, with only "
    "rlimits on memory, processes and file size. It can read the source notebooks, the hidden checks "
    "and other students' work, write anywhere you can, use the network, and leave processes running "
    "that outlive the grader. Scores are still decided outside the student's process. Use this only "
    "for code you trust, e.g. your own solutions."
)


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create a sandbox on this machine."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed kernel."""

    memory_bytes: int = 4 * 2**30  # address space: numpy + torch need ~1.5 GiB of it
    processes: int = 128  # processes and threads of the kernel's uid
    file_bytes: int = 256 * 2**20  # largest file it may write
    open_files: int = 1024
    home_bytes: int = 512 * 2**20  # size of the in-memory home folder
    tmp_bytes: int = 256 * 2**20  # size of the in-memory /tmp

    def prlimit_args(self, nproc: int | None = None) -> list[str]:
        return [
            "prlimit",
            f"--as={self.memory_bytes}",
            f"--nproc={nproc if nproc is not None else self.processes}",
            f"--fsize={self.file_bytes}",
            f"--nofile={self.open_files}",
            "--core=0",
            "--",
        ]


@dataclass
class SandboxSpec:
    """What one kernel's sandbox holds.

    The files in ``scratch`` (the notebook's copy) appear read-only in the home
    folder; ``runtime`` holds one folder per kernel start, with the kernel's
    connection file and sockets, at the same path inside and out.
    """

    scratch: Path
    runtime: Path
    course_package: Path
    probe_package: Path
    limits: Limits = field(default_factory=Limits)
    slot: int = 0  # which concurrent job this is (picks the uid when root)
    unsafe: bool = False

    @property
    def uid(self) -> int | None:
        """The uid the kernel runs as when the grader is root, else None (it keeps ours)."""
        return BASE_UID + self.slot if os.geteuid() == 0 and not self.unsafe else None

    @property
    def unsafe_probe_root(self) -> Path:
        return self.runtime.parent / "grader"

    def prepare(self) -> None:
        """Create the scratch and runtime folders (fill ``scratch`` before starting a kernel)."""
        for folder in (self.scratch, self.runtime):
            folder.mkdir(parents=True, exist_ok=True)
        if self.unsafe:  # no mounts: links in their place
            (self.scratch / "course").symlink_to(self.course_package, target_is_directory=True)
            self.unsafe_probe_root.mkdir(exist_ok=True)
            (self.unsafe_probe_root / "autograder_probe").symlink_to(self.probe_package, target_is_directory=True)
            (self.scratch / ".tmp").mkdir()

    def kernel_folder(self, number: int) -> Path:
        """A fresh folder for one kernel's connection file and sockets.

        Writable by the kernel only until it is up (:meth:`seal`), so that it cannot
        fill the host's disk through it."""
        folder = self.runtime / f"k{number}"
        folder.mkdir()
        if self.uid is not None:
            folder.chmod(0o777)
        return folder

    def seal(self, folder: Path) -> None:
        if self.uid is not None:
            folder.chmod(0o755)

    def environment(self) -> dict[str, str]:
        """The kernel's whole environment (nothing of the grader's leaks in)."""
        home = str(self.scratch) if self.unsafe else HOME
        probe_root = str(self.unsafe_probe_root) if self.unsafe else PROBE_ROOT
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "PYTHONPATH": probe_root,
            "PYTHONHASHSEED": "0",  # same set/dict orders on every run
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp" if not self.unsafe else str(self.scratch / ".tmp"),
            "IPYTHONDIR": f"{home}/.ipython",
            "JUPYTER_RUNTIME_DIR": "/tmp" if not self.unsafe else str(self.scratch / ".tmp"),
            "MPLCONFIGDIR": f"{home}/.config/matplotlib",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            # one thread per library: the same sums in the same order on every run, and
            # concurrent jobs do not fight over the cores
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "TQDM_MININTERVAL": "1",
        }
        return env

    def command_prefix(self) -> list[str]:
        """The words put in front of the kernel's own command line."""
        if self.unsafe:
            return self.limits.prlimit_args()
        groups = slot_groups(self.slot, self.limits.memory_bytes, self.limits.processes)
        return (join_prefix(groups) if groups else []) + bwrap_prefix(self)


def _python_roots() -> list[str]:
    """Folders holding the interpreter and its packages (mounted read-only)."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(os.path.realpath(os.path.dirname(os.path.realpath(sys.executable))))
    # drop folders inside other roots
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def _dirs_for(path: str) -> list[str]:
    """The ancestors of ``path`` that bubblewrap must create (readable by anyone)."""
    parts = Path(path).parts[1:-1]
    out, cur = [], ""
    for part in parts:
        cur += "/" + part
        out += ["--perms", "0755", "--dir", cur]
    return out


def bwrap_prefix(spec: SandboxSpec) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    args = [
        bwrap,
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        "--hostname", "sandbox",
        "--clearenv",
        "--proc", "/proc", "--dev", "/dev",
        "--perms", "1777", "--size", str(spec.limits.tmp_bytes), "--tmpfs", "/tmp",
    ]
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd",
                "/etc/group", "/etc/nsswitch.conf"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    why = _hidden_checks_exposed()
    if why:
        raise SandboxUnavailable(why)
    for root in _python_roots():
        if not root.startswith("/usr/"):
            args += _dirs_for(root) + ["--ro-bind", root, root]
    args += _dirs_for(str(spec.runtime)) + ["--bind", str(spec.runtime), str(spec.runtime)]
    args += _dirs_for(HOME + "/x") + ["--perms", "1777", "--size", str(spec.limits.home_bytes), "--tmpfs", HOME]
    for path in sorted(spec.scratch.rglob("*")):  # the notebook's copy and the plot cache, read-only
        inside = f"{HOME}/{path.relative_to(spec.scratch)}"
        args += ["--perms", "1777", "--dir", inside] if path.is_dir() else ["--ro-bind", str(path), inside]
    args += ["--ro-bind", str(spec.course_package), f"{HOME}/course"]
    args += _dirs_for(PROBE_ROOT + "/x") + ["--ro-bind", str(spec.probe_package), f"{PROBE_ROOT}/autograder_probe"]
    for key, value in spec.environment().items():
        args += ["--setenv", key, value]
    args += ["--chdir", HOME]
    if spec.uid is not None:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "setpriv",
                 f"--reuid={spec.uid}", f"--regid={spec.uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all"]
        args += spec.limits.prlimit_args()
    else:
        # not root: our own uid, in a user namespace; the process limit counts all our processes
        args[1:1] = ["--unshare-user"]
        args += ["--"] + spec.limits.prlimit_args(nproc=_own_process_count() + spec.limits.processes)
    return args


def _hidden_checks_exposed() -> str | None:
    """Why the sandbox would show the hidden checks (they sit inside the Python it mounts), else None."""
    hidden = os.path.realpath(Path(__file__).resolve().parent / "hidden")
    for root in _python_roots() + ["/usr"]:
        if hidden.startswith(root + os.sep):
            return (f"the hidden checks ({hidden}) are inside the Python installation the sandbox shows "
                    f"({root}); install the course with `pip install -e .` or grade from a checkout")
    return None


def _own_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count * 8  # threads count too


#: the slot this process holds (claim_slot), and the open lock file that holds it
_CLAIMED: list = []


def claim_slot(limit: int = 1000) -> int:
    """A slot (uid offset) no other grader process on this machine is using, held until this process ends.

    Each concurrent job needs its own uid: the process limit counts per uid, and
    the clean-up after a job kills every process of its uid.
    """
    if _CLAIMED:
        return _CLAIMED[0]
    folder = Path(tempfile.gettempdir()) / "dl-course-sandbox-slots"
    folder.mkdir(mode=0o755, exist_ok=True)
    for slot in range(limit):
        fd = os.open(folder / f"{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _CLAIMED.extend([slot, fd])
        return slot
    raise SandboxUnavailable(f"all {limit} sandbox slots are in use")


@functools.lru_cache(maxsize=1)
def check_available() -> str | None:
    """None when a bubblewrap sandbox works here, else the reason it does not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    exposed = _hidden_checks_exposed()
    if exposed:
        return exposed
    if shutil.which("prlimit") is None or (os.geteuid() == 0 and shutil.which("setpriv") is None):
        return "prlimit/setpriv (util-linux) are missing"
    args = [bwrap, "--unshare-pid", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    if os.geteuid() != 0:
        args.insert(1, "--unshare-user")
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap cannot run: {exc}"
    if proc.returncode != 0:
        return f"bubblewrap cannot create a sandbox here: {proc.stderr.strip() or proc.returncode}"
    return None
