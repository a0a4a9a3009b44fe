"""The smoke Job for a Pulumi stack: the stack's outputs, the suite's image (built here and loaded
into a kind cluster unless one is given), and the users' passwords, as `kfstack smoke-job` runs it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from infra.smokejob.job import JobResult, JobSpec, SmokeJob, SmokeJobError


def password_environment(users: int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The users' passwords, as the suite reads them (KFSTACK_PASSWORD_<n>, KFSTACK_USER_PASSWORD)."""
    env = os.environ if environ is None else environ
    names = [f"KFSTACK_PASSWORD_{i}" for i in range(users)] + ["KFSTACK_USER_PASSWORD"]
    return {name: env[name] for name in names if env.get(name)}


def run_for_stack(stack: str, *, image: str | None, pytest_args: Sequence[str], timeout: float, keep: bool,
                  say: Callable[[str], None]) -> JobResult:
    """Run the suite's Job in the stack's cluster until it finishes; its results, not yet written."""
    from infra.toolchain import find_binary as binary
    from infra.toolchain import tool_path
    from smoke_tests.stack_outputs import read_outputs_json, write_kubeconfig

    outputs = read_outputs_json(stack, pulumi=str(tool_path("pulumi")))
    if not outputs.get("kubeconfig"):
        raise SmokeJobError(f"stack {stack} has no kubeconfig output; is it up (`pulumi up -s {stack}`)?")
    if not image:
        from infra.smokejob.image import build_suite_image

        image = build_suite_image(say=say)
        if outputs.get("clusterProvider") == "kind":
            cluster = str(outputs.get("clusterName") or "")
            say(f"loading {image} into kind cluster {cluster} (where a node lacks it)")
            from infra.clusters.kind import node_containers
            from infra.clusters.preload import load_lacking

            load_lacking(node_containers(cluster), [image], say)
    environment = password_environment(len(outputs.get("users") or []))
    with tempfile.TemporaryDirectory(prefix="kfstack-smoke-job-") as tmp:
        kubeconfig = write_kubeconfig(str(outputs["kubeconfig"]), Path(tmp))
        job = SmokeJob(binary("kubectl"), kubeconfig, say=say)
        return job.run(JobSpec(image=image, outputs=outputs, environment=environment, args=pytest_args),
                       timeout=timeout, keep=keep)
