"""The installed distribution is one import package, ``greenepoch`` (issue 14 item 1).

The wheel is built from a copy of the checkout (so no build files land in the tree),
without network access, and read as an installer would read it.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", "__pycache__", "build", "dist", "*.egg-info", ".ci",
                              ".pytest_cache", ".mypy_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = (tmp / "dist").glob("greenepoch-*.whl")
    return zipfile.ZipFile(path)


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (entry,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(entry).decode()


def test_the_only_top_level_import_name_is_greenepoch(wheel: zipfile.ZipFile) -> None:
    tops = {n.split("/")[0] for n in wheel.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"greenepoch"}
    assert _dist_info(wheel, "top_level.txt").split() == ["greenepoch"]


def test_the_design_cards_folders_are_its_subpackages(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for package in ("data", "data/intensity", "forecasts", "solvers", "planner",
                    "planner/cli", "planner/exports", "planner/replay", "planner/whatif",
                    "planner/report"):
        assert f"greenepoch/{package}/__init__.py" in names, package
    assert "greenepoch/__init__.py" in names
    # nothing of the repository that is not the library
    assert not [n for n in names if n.split("/")[1:2] in (["tests"], ["benchmarks"],
                                                           ["examples"], ["docs"])]


def test_shipped_files_are_package_data(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for shipped in ("regions.toml", "demo_request.toml", "climatology_direct.json",
                    "climatology_lca.json"):
        assert f"greenepoch/data/{shipped}" in names, shipped


def test_the_command_is_the_packages_cli(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == {
        "greenepoch": "greenepoch.planner.cli.main:cli"}


def test_the_installed_package_finds_its_shipped_files() -> None:
    import greenepoch
    from greenepoch.data.shipped import shipped_file

    assert Path(greenepoch.__file__).resolve().parent == ROOT
    assert shipped_file("regions.toml").is_file()
