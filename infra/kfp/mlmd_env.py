"""The ML Metadata stand-in's own Python environment, apart from the project's venv.

Why apart: the `ml-metadata` 1.15.0 wheel requires protobuf<5 and attrs<24, while the project's kfp
2.15 and kserve 0.21 need protobuf 6 and attrs 26; one venv cannot hold both. So the server
(`mlmd_server.py`) runs with a venv of its own under the user cache, keyed by the pinned requirements
(a fresh clone reuses it; a pin change makes a new one), and later in an image of its own. Made on
demand by the tests' fixture, or by hand:
`.venv/bin/python -c 'from infra.kfp.mlmd_env import ensure_mlmd_venv; print(ensure_mlmd_venv())'`.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from infra.paths import cache_root
from smoke_tests.run import CommandError, run

REQUIREMENTS = Path(__file__).with_name("mlmd-requirements.txt")
SERVER = Path(__file__).with_name("mlmd_server.py")
# The wheel is built for CPython 3.11 (cp311), the Python of Debian bookworm, the image's base.
PYTHON_VERSION = (3, 11)
_DONE = ".kfstack-complete"


class MlmdEnvError(RuntimeError):
    """The stand-in's venv cannot be made here; says which step failed and its output."""


def mlmd_venv_dir() -> Path:
    """<cache>/venvs/mlmd-<hash of the requirements>: one venv per set of pins."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return cache_root() / "venvs" / f"mlmd-{digest}"


def _base_python() -> str:
    """A CPython 3.11 to make the venv with: this one when it is 3.11, else python3.11 on PATH."""
    if sys.version_info[:2] == PYTHON_VERSION:
        return sys.executable
    wanted = "python{}.{}".format(*PYTHON_VERSION)
    found = shutil.which(wanted)
    if found is None:
        raise MlmdEnvError(f"the ml-metadata wheel is built for CPython {wanted[6:]} only, and neither this "
                           f"Python ({sys.version.split()[0]}) nor {wanted} on PATH is that version")
    return found


def ensure_mlmd_venv() -> Path:
    """The venv's python, made (or remade, when an earlier attempt stopped half-way) when missing."""
    venv = mlmd_venv_dir()
    python = venv / "bin" / "python"
    pins = REQUIREMENTS.read_text(encoding="utf-8")
    done = venv / _DONE
    if python.exists() and done.exists() and done.read_text(encoding="utf-8") == pins:
        return python
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        ("create the venv", [_base_python(), "-m", "venv", str(venv)], 120.0),
        ("install the pinned requirements", [str(python), "-m", "pip", "install", "--quiet",
                                             "--disable-pip-version-check", "-r", str(REQUIREMENTS)], 600.0),
        ("check the installed set", [str(python), "-m", "pip", "check"], 120.0),
    ]
    for what, argv, timeout in steps:
        try:
            run(argv, timeout=timeout)
        except CommandError as exc:
            raise MlmdEnvError(f"cannot {what} for the ML Metadata stand-in in {venv}: {exc}") from exc
    done.write_text(pins, encoding="utf-8")
    return python
