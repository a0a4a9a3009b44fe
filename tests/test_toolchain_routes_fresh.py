"""A fresh machine, proven: the README's two commands in a clean Debian container (tier T3, `live`).

The container holds only the repository (a shallow `git clone` of HEAD, copied in: no folder of
this machine is mounted) and what the README says a machine needs (Python 3.11, git, Go for Dex).
Its network is the package registries plus two stand-ins for what these machines cannot reach:

- release pages (`KFSTACK_RELEASE_MIRROR`) serving the binaries built here, packed as upstream
  packs them, with checksums files. Where versions.toml records upstream's own digest (kind,
  kubectl, kustomize, etcd), a binary built here cannot match it, so the clone's versions.toml is
  re-pinned to the stand-in's digest: the check against a recorded digest then runs as it would
  against upstream's file (the only change made to the clone);
- Dex's tag and module: a git repository served over dumb HTTP (git's `insteadOf`, set in the
  environment) and a module proxy ahead of the real one, holding Dex's source tree as a module.

Then `./scripts/setup` and `./scripts/test`, exactly as written; both must succeed, the set-up's
summary must name a route for every tool, and every tier the tests cannot run there must be
reported as skipped with its reason. The cold time is printed for the docs. What it proves is the
set-up, so nothing is paid twice: there the simulated-cluster tier runs only the modules that use
every tool the set-up installs for it (`INSIDE_SIM_MODULES` in tests/fresh_container.py, each with
why); the host's run in the same CI runs the rest of that tier on the same commit.

The container starts when the session has collected this test, beside the other tests (the
preparation runs before any test; see tests/fresh_container.py), and the test waits at its turn
for what is left; the table's line under it gives the container's own time.

It takes about twenty minutes (most of it the test command inside), so it runs where CI runs
(`CI=true`, as `.ci/run` is run) when an input of the README's set-up changed since its last pass
on this machine (`infra.ci.fresh.INPUTS` lists them, each with why), or when asked
(`KFSTACK_FRESH_CONTAINER_TEST=1`); `KFSTACK_FRESH_CONTAINER_TEST=0` turns it off. A pass records
its digest, commit, date and times in the user cache; with the digest unchanged the test reports
NOT RUN naming that pass, never a pass of its own. Its own row in the test command's table comes
from the `fresh` marker.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from infra.ci.budget import FRESH_REPORT
from infra.ci.fresh import not_run_reason, record_pass, record_path
from infra.toolchain.model import load_toolchain
from infra.versions import load_versions
from tests.fresh_container import INSIDE, REPO, FreshRun, started_beside

pytestmark = [pytest.mark.live, pytest.mark.fresh]


def _junit_counts(report: Path) -> dict[str, tuple[int, int]]:
    """(passed, skipped) per test module of a JUnit report; empty when there is none."""
    if not report.is_file():
        return {}
    counts: dict[str, tuple[int, int]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        module = case.get("classname", "").split(".")
        path = "/".join(m for m in module if not m[:1].isupper()) + ".py"
        passed, skipped = counts.get(path, (0, 0))
        if case.find("skipped") is not None:
            skipped += 1
        elif case.find("failure") is None and case.find("error") is None:
            passed += 1
        counts[path] = (passed, skipped)
    return counts


@pytest.fixture
def fresh_run(request: pytest.FixtureRequest) -> Iterator[FreshRun]:
    """The fresh run, started beside the other tests when the session began (else here); its
    container and stand-ins are removed afterwards, its folder (the log, the reports) only when the
    test passed."""
    if os.environ.get(INSIDE):
        pytest.skip("NOT RUN: already inside the fresh container")
    reason = not_run_reason(os.environ, REPO)
    if reason is not None:
        pytest.skip(reason)
    beside = started_beside(request.config)
    fresh = beside.run if beside is not None else FreshRun(work=Path(tempfile.mkdtemp(prefix="kfstack-fresh-")))
    try:
        if beside is None:
            fresh.start()
        else:
            beside.take()
        yield fresh
    finally:
        fresh.close(keep=True)  # a test that passed has removed the folder already


def test_readme_commands_on_a_fresh_debian_container(fresh_run: FreshRun) -> None:
    code = fresh_run.result()
    fresh_run.close(keep=True)  # the reports, copied out of the container
    log, served, releases, seconds = fresh_run.log, fresh_run.served, fresh_run.releases, fresh_run.seconds
    output = log.read_text(errors="replace")
    tail = "\n".join(output.splitlines()[-80:])
    assert code == 0, f"the README's commands failed in a fresh container (exit {code}); log {log}:\n{tail}"
    summary = [line for line in output.splitlines() if line.startswith("toolchain: ") and "routes:" in line]
    assert summary, tail
    routes = dict(part.split("=", 1) for part in summary[-1].split("routes: ", 1)[1].split(", "))
    assert {t.name for t in load_toolchain().defaults()} == set(routes)
    assert all(routes[name].startswith("release") for name in served), summary[-1]
    assert routes["dex"].startswith("module"), summary[-1]
    assert not re.search(r"^FAILED ", output, re.MULTILINE), tail
    assert not re.search(r"^ERROR ", output, re.MULTILINE), tail
    skipped = re.findall(r"^SKIPPED \[\d+\] .*", output, re.MULTILINE)  # -rs: each with its reason
    assert all(re.match(r"SKIPPED \[\d+\] \S+:\d+: \S", line) for line in skipped), "\n".join(skipped)
    # The render, simulated-cluster and upgrade tiers run there as here: the set-up fetched the trees.
    assert sorted(releases) == sorted(load_versions().releases), f"manifests trees missing here: served {releases}"
    assert not [line for line in skipped if "manifests tree" in line], "\n".join(skipped)
    ran = _junit_counts(fresh_run.reports / "project-tests.xml")
    for module in ("tests/test_render.py", "tests/test_readme.py", "tests/test_sim_stack.py",
                   "tests/test_upgrade_sim.py"):
        assert ran.get(module, (0, 0))[0] > 0, f"no test of {module} ran there: {ran}"
    assert _junit_counts(fresh_run.reports / "smoke.xml"), "the smoke suite wrote no report"
    print("per module (passed, skipped): " + ", ".join(f"{m} {c}" for m, c in sorted(ran.items())))
    times = re.findall(r"^FRESH-CONTAINER-TIMES setup=(\d+)s test=(\d+)s", output, re.MULTILINE)
    setup_s, test_s = (float(t) for t in times[-1]) if times else (None, None)
    print(f"fresh container: README commands in {seconds:.0f}s; {summary[-1]}; "
          + " ".join(re.findall(r"FRESH-CONTAINER-TIMES .*", output)) + f"; {len(skipped)} skip lines:\n"
          + "\n".join(skipped))
    if (REPO / "reports").is_dir():  # the test command's table says what ran beside it (infra.ci.budget)
        (REPO / "reports" / FRESH_REPORT).write_text(json.dumps({"container_seconds": round(seconds, 1)}) + "\n")
    done = record_pass(fresh_run.digest, fresh_run.commit, seconds, setup_seconds=setup_s, test_seconds=test_s)
    print(f"recorded in {record_path()}: {done.summary()}")
    fresh_run.close(keep=False)
