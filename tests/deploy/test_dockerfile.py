"""The Dockerfile matches the project: base Python, packages copied, the wheel installed, entrypoint, no build tools.

No Docker engine runs here, so the file is parsed; the image's contents follow from these facts and pyproject.toml.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.deploy.helpers import DEPLOY, REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
IMAGE_EXTRAS = ("cri",)  # the CRI netns source needs grpcio: the image supports both overlays
BUILD_TOOLS = re.compile(r"\b(apt-get|apt|apk|gcc|g\+\+|make|build-essential|python3?-dev|cc)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages (FROM with ARGs substituted), each with its instructions in order."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    logical = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    for line in logical.splitlines():
        if not line.strip():
            continue
        keyword, _, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], rest).split()
            stages.append(Stage(words[0], words[2] if len(words) == 3 and words[1].upper() == "AS" else None))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, rest))
    return args, stages


ARGS, STAGES = parse_dockerfile((REPO / "Dockerfile").read_text())
FINAL = STAGES[-1]


def test_python_version_matches_the_project() -> None:
    minimum = re.fullmatch(r">=\s*(\d+\.\d+)", PROJECT["project"]["requires-python"])
    assert minimum, "requires-python is expected as >=X.Y"
    assert ARGS["PYTHON_VERSION"] == minimum[1] == PROJECT["tool"]["mypy"]["python_version"]
    assert PROJECT["tool"]["ruff"]["target-version"] == "py" + minimum[1].replace(".", "")
    assert {stage.base for stage in STAGES} == {f"python:{minimum[1]}-slim"}


def test_multi_stage_wheel_built_first_and_installed_offline() -> None:
    assert len(STAGES) == 2
    build = STAGES[0]
    assert build.name and FINAL.name is None
    copied = {source for c in build.all("COPY") for source in shlex.split(c)[:-1]}
    top_level = {Path(p).name for p in PROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", PROJECT["project"]["readme"]} | {p.rstrip("*") for p in top_level} <= copied
    extras = ",".join(IMAGE_EXTRAS)
    assert f"pip wheel --no-cache-dir --wheel-dir /wheels '.[{extras}]'" in build.all("RUN")
    assert FINAL.all("COPY") == [f"--from={build.name} /wheels /wheels"]
    (install,) = FINAL.all("RUN")
    name, version = PROJECT["project"]["name"], PROJECT["project"]["version"]
    prefix = "pip install --no-cache-dir --no-index --find-links /wheels"
    assert install.startswith(f"{prefix} '{name}[{extras}]=={version}' ")


def test_no_build_tools_in_the_final_image() -> None:
    (install,) = FINAL.all("RUN")
    assert not BUILD_TOOLS.search(install)
    assert "rm -rf /wheels" in install
    assert install.endswith("pip uninstall --yes pip setuptools wheel")


def test_entrypoint_is_the_console_script() -> None:
    (entrypoint,) = FINAL.all("ENTRYPOINT")
    scripts = PROJECT["project"]["scripts"]
    assert yaml.safe_load(entrypoint) == [next(iter(scripts))]
    module, _, function = scripts["trinet"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_default_user_is_not_root_and_the_daemonset_says_why_it_is() -> None:
    (user,) = FINAL.all("USER")
    assert user.split(":")[0] not in {"0", "root"}
    daemonset = yaml.safe_load((DEPLOY / "base" / "daemonset.yaml").read_text())
    security = daemonset["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert security["runAsUser"] == 0
    assert security["capabilities"]["drop"] == ["ALL"]


def test_image_tag_in_kustomization_is_the_project_version() -> None:
    kustomization = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert kustomization["images"] == [{"name": "trinet", "newTag": PROJECT["project"]["version"]}]


def test_image_extras_are_declared() -> None:
    assert set(IMAGE_EXTRAS) <= set(PROJECT["project"].get("optional-dependencies", {}))


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    """The image installs the declared dependencies and the extras it names only: anything imported but not
    declared there would be missing from it."""
    requirements = list(PROJECT["project"]["dependencies"])
    for extra in IMAGE_EXTRAS:
        requirements += PROJECT["project"].get("optional-dependencies", {}).get(extra, [])
    declared = {_normalise(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in requirements}
    own = {"trinet", "netlink_nft"}
    distributions = importlib.metadata.packages_distributions()
    missing: dict[str, set[str]] = {}
    for package in own:
        for path in (REPO / package).rglob("*.py"):
            for module in _imported_top_level(path) - own - set(sys.stdlib_module_names):
                dists = {_normalise(d) for d in distributions.get(module, [module])}
                if not dists & declared:
                    missing.setdefault(module, set()).add(str(path.relative_to(REPO)))
    assert missing == {}, f"imported but not in project.dependencies: {missing}"


def _imported_top_level(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
