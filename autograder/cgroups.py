"""One sandbox, one share of the machine: a control group per grading slot.

Rlimits bound each process of a sandbox, not the sandbox as a whole, and not its share of the
CPU: 24 spinning processes in one sandbox once slowed a neighbour's cells past their time
limit, and four children of 1.5 GiB each held 6 GiB in a "4 GiB" kernel. When the grader runs
as root on a machine whose control groups it may write (v1 hierarchies or the v2 unified one),
each slot gets its own group:

- CPU: pinned to one core (slot modulo the cores this process may use) and capped at one CPU's
  time, so that a sandbox cannot take a neighbour's core;
- memory: ``Limits.memory_bytes`` for every process of the sandbox together;
- processes: ``Limits.processes`` tasks (threads included).

The sandbox's first process joins the groups before it starts bubblewrap
(:func:`join_prefix`), so everything it starts is inside. Where control groups cannot be
used, :func:`slot_groups` returns None and the grader says so once; rlimits still apply.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Optional

ROOT = Path("/sys/fs/cgroup")
NAME = "dl-course-grader"
PERIOD_US = 100_000


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def _v1_groups(slot: int, memory_bytes: int, processes: int) -> list[Path]:
    core = _cores()[slot % len(_cores())]
    groups = []
    for controller in ("cpu", "cpuset", "memory", "pids"):
        base = ROOT / controller
        if not (base / "cgroup.procs").exists():
            raise OSError(f"no v1 {controller} hierarchy")
        parent, group = base / NAME, base / NAME / f"slot-{slot}"
        for folder in (parent, group):
            folder.mkdir(exist_ok=True)
            if controller == "cpuset":  # a v1 cpuset group needs its own cpus and mems before any task joins
                _write(folder / "cpuset.mems", (base / "cpuset.mems").read_text().strip())
                _write(folder / "cpuset.cpus", (base / "cpuset.cpus").read_text().strip() if folder is parent
                       else str(core))
        if controller == "cpu":
            _write(group / "cpu.cfs_period_us", str(PERIOD_US))
            _write(group / "cpu.cfs_quota_us", str(PERIOD_US))
        elif controller == "memory":
            _write(group / "memory.limit_in_bytes", str(memory_bytes))
        elif controller == "pids":
            _write(group / "pids.max", str(processes))
        groups.append(group)
    return groups


def _v2_groups(slot: int, memory_bytes: int, processes: int) -> list[Path]:
    if not (ROOT / "cgroup.controllers").exists():
        raise OSError("no v2 hierarchy at the root")
    wanted = {"cpu", "cpuset", "memory", "pids"}
    if not wanted <= set((ROOT / "cgroup.controllers").read_text().split()):
        raise OSError("the v2 hierarchy lacks a controller")
    parent, group = ROOT / NAME, ROOT / NAME / f"slot-{slot}"
    parent.mkdir(exist_ok=True)
    group.mkdir(exist_ok=True)
    for folder in (ROOT, parent):
        _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))
    _write(group / "cpuset.cpus", str(_cores()[slot % len(_cores())]))
    _write(group / "cpu.max", f"{PERIOD_US} {PERIOD_US}")
    _write(group / "memory.max", str(memory_bytes))
    _write(group / "pids.max", str(processes))
    return [group]


def slot_groups(slot: int, memory_bytes: int, processes: int) -> Optional[list[Path]]:
    """The control groups of a slot, created or refreshed; None where they cannot be used."""
    if os.geteuid() != 0:
        return None
    for make in (_v1_groups, _v2_groups):
        try:
            return make(slot, memory_bytes, processes)
        except OSError:
            continue
    return None


def join_prefix(groups: list[Path]) -> list[str]:
    """Words that run the rest of a command line inside ``groups``: a shell writes its own pid into
    each group, then becomes the command (so the command and all it starts are inside)."""
    joins = " && ".join(f"echo $$ > {shlex.quote(str(g / 'cgroup.procs'))}" for g in groups)
    return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sandbox"]
