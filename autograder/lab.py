"""Start a student's JupyterLab: the course's workspace, without nbgrader's instructor tools.

``python -m autograder.lab work/week1 [jupyter lab options]`` (what ``make lab`` runs):
JupyterLab starts in the workspace with nbgrader's server extensions (formgrader, assignment
and course lists, validation) and its JupyterLab extension (the Nbgrader menu, Create
Assignment, Validate) turned off. The switch lives in a config folder inside the workspace,
``.jupyter-student``, added to JUPYTER_CONFIG_PATH for this process only: the user's own
Jupyter configuration is never touched, and an instructor's JupyterLab started elsewhere (for
example from the repository root) keeps every nbgrader tool.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CONFIG_DIR = ".jupyter-student"
NBGRADER_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"


def write_student_config(workspace: Path) -> Path:
    """Write the workspace's config folder (idempotent) and return it."""
    config = Path(workspace) / CONFIG_DIR
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    server = {"ServerApp": {"jpserver_extensions": {name: False for name in NBGRADER_SERVER_EXTENSIONS}}}
    (config / "jupyter_server_config.json").write_text(json.dumps(server, indent=2) + "\n")
    page = {"disabledExtensions": {NBGRADER_LAB_EXTENSION: True}}
    (config / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=2) + "\n")
    return config


def student_lab_command(workspace: Path, *options: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a student's JupyterLab in ``workspace``."""
    workspace = Path(workspace).resolve()
    config = write_student_config(workspace)
    env = dict(os.environ)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(config)] + [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}", *options]
    if hasattr(os, "getuid") and os.getuid() == 0 and "--allow-root" not in options:
        cmd.append("--allow-root")
    return cmd, env


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m autograder.lab WORKSPACE [jupyter lab options]", file=sys.stderr)
        return 2
    workspace, options = Path(args[0]), args[1:]
    if not workspace.is_dir():
        print(f"no workspace at {workspace}; run `make lab` (it creates it)", file=sys.stderr)
        return 2
    cmd, env = student_lab_command(workspace, *options)
    os.chdir(workspace)
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
