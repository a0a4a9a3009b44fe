"""The smoke suite inside the cluster: the entry point of the in-cluster Job's container.

Where no port-forward can reach the gateway (a CI runner without kubectl access to pod ports, a
locked-down cluster), the suite runs as a Job: Kubernetes access from the pod's ServiceAccount,
the gateway by its Service's cluster DNS name, the stack's outputs mounted from a ConfigMap. The
JUnit XML and the Markdown report are printed to the log between markers, compressed, so the
harness collects them with `kubectl logs` alone (no volume, no copy out of a finished pod).
"""

from __future__ import annotations

import base64
import gzip
import os
import sys
from pathlib import Path

import yaml

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
BEGIN, END = "----- kfstack-smoke {name} begin -----", "----- kfstack-smoke {name} end -----"
RESULTS = ("junit.xml", "smoke.md")


def service_account_kubeconfig(workdir: Path, account: Path = ACCOUNT,
                               environ: dict[str, str] | None = None) -> Path:
    """A kubeconfig for the pod's own ServiceAccount, since the suite takes a kubeconfig."""
    env = os.environ if environ is None else environ
    host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
              "clusters": [{"name": "in-cluster", "cluster": {
                  "server": server, "certificate-authority": str(account / "ca.crt")}}],
              "users": [{"name": "smoke-suite", "user": {"token": (account / "token").read_text().strip()}}],
              "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "smoke-suite"}}]}
    path = workdir / "kubeconfig"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh)
    return path


def framed(name: str, data: bytes) -> str:
    """`data` gzipped and base64-encoded between marker lines, as the Job prints it."""
    body = base64.b64encode(gzip.compress(data)).decode()
    lines = [body[i:i + 76] for i in range(0, len(body), 76)]
    return "\n".join([BEGIN.format(name=name), *lines, END.format(name=name)])


def unframe(log: str, name: str) -> bytes | None:
    """The file `name` from a Job's log, or None when the log does not hold it (whole)."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    lines = log.splitlines()
    try:
        start = lines.index(begin)
        stop = lines.index(end, start)
    except ValueError:
        return None
    return gzip.decompress(base64.b64decode("".join(lines[start + 1:stop])))


def main(argv: list[str]) -> int:
    import pytest

    workdir = Path(os.environ.get("KFSTACK_SMOKE_WORKDIR", "/tmp/kfstack-smoke"))
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = service_account_kubeconfig(workdir)
    args = ["--pyargs", "smoke_tests.checks", "-p", "no:cacheprovider", "--kubeconfig", str(kubeconfig),
            "--junitxml", str(workdir / "junit.xml"), "--smoke-report", str(workdir / "smoke.md"),
            "--diagnostics-dir", str(workdir / "diagnostics"), *argv]
    code = int(pytest.main(args))
    sys.stdout.flush()
    for name in RESULTS:
        path = workdir / name
        if path.exists():
            print(framed(name, path.read_bytes()), flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
