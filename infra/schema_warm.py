"""The OpenAPI warm-up as a process of its own, so it outlives the `pulumi up` that started it.

`DefinitionsClient.warm_schema` reads the API server's OpenAPI document until it stops changing,
so the server has rebuilt it before the next `pulumi up` asks. Run on a thread of the dynamic
provider, it died with the provider when the update ended, and an update that ends a few seconds
after the CRDs are established (the workloads no longer wait for them) ended before the rebuild:
the next `pulumi up` paid for it. Here it runs in a new session, detached from the provider's
output, bounded by the warm-up's own limit (`WARM_LIMIT_S` after `delay`), and reads the
kubeconfig from its standard input (never its arguments or environment, which other users of the
machine can read).

Usage (what `spawn` runs): `python -m infra.schema_warm`, with {"kubeconfig", "context", "delay"}
as JSON on standard input.
"""

from __future__ import annotations

import json
import subprocess
import sys

from infra.definitions import WARM_DELAY_S, DefinitionsClient


def spawn(kubeconfig: str, context: str | None, delay: float = WARM_DELAY_S) -> subprocess.Popen[bytes]:
    """Start the warm-up in its own session and return at once; nothing waits for it."""
    proc = subprocess.Popen([sys.executable, "-m", "infra.schema_warm"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"kubeconfig": kubeconfig, "context": context, "delay": delay}).encode())
    proc.stdin.close()
    return proc


def main() -> int:
    request = json.load(sys.stdin)
    client = DefinitionsClient(request["kubeconfig"], request.get("context"))
    client.warm_schema(delay=float(request.get("delay", WARM_DELAY_S))).join()
    return 0 if client.schema_reads else 1


if __name__ == "__main__":
    sys.exit(main())
