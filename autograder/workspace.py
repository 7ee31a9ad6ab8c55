"""Copy the student release into a personal workspace without losing any work.

``python -m autograder.workspace release/week1 work/week1`` (what ``make lab`` runs):
notebooks already in the workspace are never overwritten, whatever their age;
new notebooks are copied in; the bundled ``course`` package, which students do not
edit, is refreshed so fixes to it reach them.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .release import BUNDLE_IGNORE

REFRESHED = ("course",)


def sync_workspace(release: Path, workspace: Path) -> dict[str, list[str]]:
    """Bring ``workspace`` up to date with ``release``; returns what was copied and kept."""
    release, workspace = Path(release), Path(workspace)
    if not release.is_dir():
        raise FileNotFoundError(f"no release folder at {release}; run `make release` first")
    workspace.mkdir(parents=True, exist_ok=True)
    report: dict[str, list[str]] = {"copied": [], "kept": [], "refreshed": []}
    for item in sorted(release.iterdir()):
        target = workspace / item.name
        if item.is_dir():
            if item.name in REFRESHED:
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(item, target, ignore=BUNDLE_IGNORE)
                report["refreshed"].append(item.name)
            elif not target.exists():
                shutil.copytree(item, target, ignore=BUNDLE_IGNORE)
                report["copied"].append(item.name)
            else:
                report["kept"].append(item.name)
        elif target.exists():
            report["kept"].append(item.name)
        else:
            shutil.copy2(item, target)
            report["copied"].append(item.name)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("release", type=Path)
    parser.add_argument("workspace", type=Path)
    args = parser.parse_args(argv)
    report = sync_workspace(args.release, args.workspace)
    for key in ("copied", "kept", "refreshed"):
        if report[key]:
            print(f"{key:>9}: {', '.join(report[key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
