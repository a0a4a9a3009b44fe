"""`pulumi up` as a step of the run (`up`, and `second-up` on the cleaned cluster with --twice).

Pulumi's output goes to logs/<label>.log; the update's timeline (how long each part of the release
took) goes into the record under the same label, whether the update succeeds or not. A stack kept by
a run of an earlier version (--keep) is moved to this version's layout first (infra/migrate.py),
which the log says.
"""

from __future__ import annotations

from pulumi import automation as auto

from infra.conformance.session import Run, line_logger
from infra.conformance.timeline import recorded
from infra.migrate import migrate


def pulumi_up(run: Run, label: str) -> auto.UpResult:
    assert run.stack is not None
    log = line_logger(run.logs / f"{label}.log")
    migrate(run.stack, lambda: str(run.outputs()["kubeconfig"]), log)
    with recorded(run.record, label) as timeline:
        timeline.start()
        return run.stack.up(parallel=run.opts.parallel, on_event=timeline, color="never", show_secrets=False,
                            on_output=log)


def step(run: Run, label: str) -> None:
    with run.step(label):
        pulumi_up(run, label)
