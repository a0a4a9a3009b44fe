"""Whether a privileged container starts here: what kind does for every node.

The probe image holds one static binary (the runc shim, which answers as `kfstack-probe` when
called by that name) and is built locally, so the check needs no registry.
"""

from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.runtime import docker, shim
from smoke_tests.run import CommandError, run

PROBE_REPOSITORY = "kfstack/probe"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


def probe_image(cli: str) -> str:
    """The probe image's tag (built from the shim when missing)."""
    binary = shim.build_shim(lambda _line: None)
    tag = f"{PROBE_REPOSITORY}:{binary.parent.parent.name}"
    if run([cli, "image", "inspect", tag], timeout=30, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "probe.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(binary, arcname="kfstack-probe")
        run([cli, "import", "--change", 'ENTRYPOINT ["/kfstack-probe"]', str(archive), tag], timeout=120)
    return tag


def privileged_container_starts() -> ProbeResult:
    """Run the probe image with --privileged and no network; report what runc said if it failed."""
    cli = docker.docker_cli()
    if cli is None or docker.server_info() is None:
        return ProbeResult(False, "no Docker daemon answers")
    try:
        tag = probe_image(cli)
        out = run([cli, "run", "--rm", "--privileged", "--network", "none", tag], timeout=120).stdout.strip()
    except (CommandError, RuntimeError) as exc:
        text = exc.stderr if isinstance(exc, CommandError) else str(exc)
        lines = [line for line in text.splitlines() if line.strip()]
        return ProbeResult(False, lines[0] if lines else str(exc))  # docker's error comes first
    return ProbeResult(out.startswith("kfstack-probe ok"), out)
