"""pyproject.toml and environment.yml list the same packages with the same bounds."""
import re
from importlib import metadata

import yaml

from notebooks import ROOT



def _normalise(req: str) -> tuple[str, str]:
    req = req.split(";")[0].strip().replace(" ", "")
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", req).groups()
    return name.lower().replace("_", "-"), ",".join(sorted(spec.split(","))) if spec else ""


def test_environment_yml_matches_pyproject():
    declared = {_normalise(r) for r in metadata.requires("dl-foundations-course")}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_normalise(d) for d in dep["pip"] if not d.startswith("-e")}
        elif not dep.startswith(("python", "pip")):
            conda.add(_normalise(dep))
    listed = conda | pip
    assert listed == declared, (
        f"only in pyproject.toml: {sorted(declared - listed)}; only in environment.yml: {sorted(listed - declared)}"
    )
