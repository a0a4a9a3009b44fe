"""The external programs the suite runs (kubectl for port-forwards, pulumi for `--stack`, kfstack to
start the local target): `KFSTACK_BIN_<NAME>` when set, else the Python environment's own scripts
directory (where pip put `kfstack`), else PATH.

The suite locates nothing else: the kubeflow-stacks project has its own pinned toolchain and, when it
runs the suite, puts those tools on PATH (`kfstack tools env`) or names them in `KFSTACK_BIN_*`. The
variable's name is this module's `override_variable`, which the project's tool locator uses too.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import Mapping
from pathlib import Path


class ToolNotFoundError(RuntimeError):
    """A program the suite needs is not installed where it looks; the message says where it looked."""


def override_variable(binary: str) -> str:
    """`kube-apiserver` -> `KFSTACK_BIN_KUBE_APISERVER`."""
    return "KFSTACK_BIN_" + binary.upper().replace("-", "_").replace(".", "_")


def override(binary: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The executable `KFSTACK_BIN_<NAME>` names, if it is set; `ToolNotFoundError` if it is no executable."""
    env = os.environ if environ is None else environ
    variable = override_variable(binary)
    explicit = env.get(variable)
    if not explicit:
        return None
    path = Path(explicit).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolNotFoundError(f"{variable}={explicit} is not an executable file")
    return path


def find_tool(binary: str, environ: Mapping[str, str] | None = None) -> str:
    """The executable to run for `binary`; `ToolNotFoundError` naming the variable to set."""
    env = os.environ if environ is None else environ
    explicit = override(binary, env)
    if explicit is not None:
        return str(explicit)
    scripts = Path(sysconfig.get_path("scripts")) / binary
    if scripts.is_file() and os.access(scripts, os.X_OK):
        return str(scripts)  # installed into the same environment as the suite
    found = shutil.which(binary, path=env.get("PATH"))
    if found:
        return found
    raise ToolNotFoundError(f"{binary} not found on PATH; install it or set {override_variable(binary)} to its path")
