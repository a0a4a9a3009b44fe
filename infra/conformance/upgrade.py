"""The upgrade from the previous release, as steps of the run: deploy that release (`up-from`),
create user state (`user-state`), move to the stack's own release with a guarded `pulumi up`
(`upgrade`), and check what the upgrade kept, changed and deleted (`upgrade-checks`).

The guard (`data_guard`) previews first and refuses, before anything changes, an update that
would lose data; the checks are `upgrade_checks`; the user state is `user_state`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.conformance.data_guard import DataLossRefused, Plan, guarded_up
from infra.conformance.record import write_junit
from infra.conformance.session import Run, line_logger
from infra.conformance.timeline import recorded
from infra.conformance.up import pulumi_up
from infra.conformance.upgrade_checks import Before, before_upgrade, upgrade_checks
from infra.conformance.workspace import set_release, stack_file


def resolve_from_tree(run: Run) -> Path:
    """The previous release's manifests tree: --from-manifests, else the pinned release fetched once."""
    from infra.manifests.source import check_tree, fetch_release

    assert run.opts.upgrade_from is not None
    if run.opts.from_manifests:
        return check_tree(run.opts.from_manifests)
    return fetch_release(run.opts.upgrade_from)


def guarded_upgrade(run: Run) -> Plan:
    """Back to the stack's own config (its release and manifests), then the guarded update; the
    preview's list goes to upgrade-preview.md, refused or not."""
    opts, record = run.opts, run.record
    assert run.stack is not None
    shutil.copyfile(stack_file(opts.project_dir, opts.stack), run.workdir / f"Pulumi.{opts.stack}.yaml")
    title = f"Upgrade {opts.upgrade_from} -> {record.release}: what the preview listed"
    try:
        with recorded(record, "upgrade") as timeline:
            plan, _ = guarded_up(run.stack, allow_data_loss=opts.allow_replace, parallel=opts.parallel,
                                 on_output=line_logger(run.logs / "upgrade.log"), on_event=timeline,
                                 before_up=timeline.start)
    except DataLossRefused as exc:
        (run.dir / "upgrade-preview.md").write_text(f"**Refused:** {exc}\n\n" + exc.plan.markdown(title),
                                                    encoding="utf-8")
        raise
    (run.dir / "upgrade-preview.md").write_text(plan.markdown(title), encoding="utf-8")
    return plan


def step(run: Run) -> None:
    """up at the previous release, user state, the guarded upgrade, then its checks."""
    opts, record = run.opts, run.record
    assert run.stack is not None and opts.upgrade_from is not None
    with run.step("up-from", record_as="up"):
        tree = resolve_from_tree(run)
        set_release(run.workdir, opts.stack, opts.upgrade_from, tree)
        pulumi_up(run, "up-from")
    if record.failed_step:
        return
    provider = str((run.config.get("cluster") or {}).get("provider", ""))
    before: Before | None = None
    with run.step("user-state", record_as="upgrade"):
        before = before_upgrade(run, provider)
    if record.failed_step or before is None:
        return
    plan = Plan()
    with run.step("upgrade"):
        plan = guarded_upgrade(run)
    if record.failed_step:
        return
    with run.step("upgrade-checks", record_as="upgrade") as checking:
        checks = upgrade_checks(run, plan, before)
        record.checks += checks
        write_junit(run.dir / "junit" / "upgrade.xml", "upgrade", checks)
        failed = [c.id for c in checks if c.failed]
        checking.detail = f"{len(checks) - len(failed)} of {len(checks)} upgrade checks passed"
        if failed:
            raise AssertionError("upgrade check(s) failed: " + ", ".join(failed))
