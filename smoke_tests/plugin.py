"""pytest plugin (entry point `kubeflow_stacks`): options, their validation, markers, fixtures.

Loaded by every pytest run in the environment, so it stays cheap: heavy libraries (kubernetes, kfp,
kserve) are imported inside fixtures. The report is registered only when a target is selected.
"""

from __future__ import annotations

import pytest

from smoke_tests.fixtures.auth import (  # noqa: F401 - re-exported fixtures
    dex_session,
    dex_session_factory,
    foreign_token,
    namespace_token_factory,
    owner_token,
)
from smoke_tests.fixtures.kfp import (  # noqa: F401
    experiment_factory,
    hello_run,
    kfp_client,
    kfp_m2m_client,
    kfp_runs,
    pipeline_run_factory,
)
from smoke_tests.fixtures.kube import k8s_object_factory, kube_api, namespace_factory  # noqa: F401
from smoke_tests.fixtures.models import sample_runs, served_models, trained_models  # noqa: F401
from smoke_tests.fixtures.storage import artifact_store  # noqa: F401
from smoke_tests.fixtures.target import (  # noqa: F401
    SETTINGS_KEY,
    gateway_forward,
    kf_settings,
    kf_target,
)
from smoke_tests.settings import OPTIONS, problems, resolve

GROUP = "kubeflow-stacks"
MARKERS = {
    "readiness": "every Kubeflow workload ready, none crash-looping, webhooks served",
    "objects": "the objects the stack made are in the cluster (profiles and their owners)",
    "outputs": "the stack's outputs are complete and agree with each other",
    "portforward": "the ingress gateway answers through a supervised port-forward",
    "login": "Dex login through the gateway: right password gives a session, wrong one none",
    "pipeline": "KFP experiments and v2 pipeline runs in the user's profile namespace",
    "inference": "KServe models answer V1 and V2 requests correctly",
    "storage": "the pipeline artifact store, its bucket and a run's artifacts",
    "isolation": "another namespace's token gets 403; no token gets a login redirect, 401 or 403",
}
TARGET_HINT = ("choose a target: --stack NAME, --kubeconfig PATH [--context NAME], --endpoint URL or "
               "--local-target (or KFSTACK_STACK, KFSTACK_KUBECONFIG, KFSTACK_ENDPOINT, KFSTACK_LOCAL_TARGET=1)")


def _pytest_kind_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("pytest_kind") is not None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "kubeflow-stacks smoke suite (each option also reads the named "
                                   "environment variable; the command line wins)")
    for option in OPTIONS:
        kwargs: dict[str, object] = {"dest": option.dest, "help": f"{option.help} [${option.env}]"}
        if option.kind != "flag" and not option.choices:
            kwargs["metavar"] = {"path": "PATH", "float": "SECONDS"}.get(option.kind, "VALUE")
        if option.kind == "flag":
            kwargs["action"] = "store_true"
            kwargs["default"] = False
        else:
            kwargs["default"] = None
            if option.choices:
                kwargs["choices"] = option.choices
        if option.shared and _pytest_kind_installed():
            continue  # pytest-kind defines --kubeconfig with the same meaning; its value is read
        group.addoption(option.flag, **kwargs)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    settings = resolve({o.dest: config.getoption(o.dest, default=None) for o in OPTIONS})
    found = problems(settings)
    if settings.stack_outputs and not found:
        from smoke_tests.stack_outputs import load_stack_outputs

        try:  # a file that misses the contract is bad input: say which field before any test
            load_stack_outputs(settings.stack_outputs)
        except ValueError as exc:
            found.append(str(exc))
    if found:
        raise pytest.UsageError("kubeflow-stacks smoke suite: " + "; ".join(found))
    config.stash[SETTINGS_KEY] = settings
    if settings.target_kind is not None:
        from smoke_tests.report import SmokeReport

        config.pluginmanager.register(SmokeReport(config, settings), "kubeflow-stacks-report")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A check collected without a target is a usage error, not a pile of skips."""
    if config.stash[SETTINGS_KEY].target_kind is not None:
        return
    needing = [i.nodeid for i in items if "kf_target" in getattr(i, "fixturenames", ())]
    if needing:
        raise pytest.UsageError(f"{len(needing)} smoke check(s) collected but no target: {TARGET_HINT}")
