"""The distribution as a user installs it: a wheel and an sdist built from this tree, the wheel
installed into a fresh virtual environment with nothing else, and the installed command run from
outside any checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from bastion import DISTRIBUTION, __version__

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(out), str(ROOT)], ROOT, dict(os.environ))
    return out


def test_the_wheel_and_the_sdist_carry_the_distribution_name_and_no_tests(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    stem = DISTRIBUTION.replace("-", "_")
    assert wheel.name == f"{stem}-{__version__}-py3-none-any.whl"
    assert sdist.name == f"{stem}-{__version__}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "bastion/cli/main.py" in names
        assert "bastion/py.typed" in names
        assert not [name for name in names if name.startswith("tests/")]
        entry_points = archive.read(f"{stem}-{__version__}.dist-info/entry_points.txt").decode()
        assert "bastion = bastion.cli.main:main" in entry_points
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
        assert f"{stem}-{__version__}/src/bastion/cli/main.py" in members
        assert not [name for name in members if "/tests/" in name or "node_modules" in name]


def test_the_wheel_in_a_fresh_venv_runs_version_demo_and_doctor(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ))
    env = {key: value for key, value in os.environ.items() if key not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    _run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], tmp_path, env)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**env, "BASTION_HOME": str(home), "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}
    bastion = str(venv / "bin" / "bastion")

    version = _run([bastion, "--version"], work, env)
    assert version.stdout.strip() == f"{DISTRIBUTION} {__version__}"

    demo = _run([bastion, "demo", "--workdir", str(work / "demo")], work, env)
    assert "paths.outside_roots" in demo.stdout + demo.stderr

    doctor = _run([bastion, "doctor"], work, env)
    assert "bubblewrap" in doctor.stdout.lower()
