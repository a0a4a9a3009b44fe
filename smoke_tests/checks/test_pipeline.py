"""KFP in the user's profile namespace: experiments come and go; the hello and iris v2 pipelines succeed."""

from __future__ import annotations

from typing import Any

import pytest

from smoke_tests.fixtures.kfp import FinishedRun
from smoke_tests.target import KFP, Target

pytestmark = pytest.mark.pipeline


def test_experiment_create_and_delete(kfp_client: Any, kf_target: Target) -> None:
    experiment = kfp_client.create_experiment(name="kfstack-smoke-experiment-check",
                                              namespace=kf_target.user(0).profile)
    try:
        assert kfp_client.get_experiment(experiment_id=experiment.experiment_id).display_name == \
            "kfstack-smoke-experiment-check"
    finally:
        kfp_client.delete_experiment(experiment.experiment_id)
    listed = kfp_client.list_experiments(namespace=kf_target.user(0).profile, page_size=200).experiments or []
    assert experiment.experiment_id not in [e.experiment_id for e in listed]


def test_hello_pipeline_succeeds(hello_run: FinishedRun) -> None:
    assert hello_run.succeeded, hello_run.describe()


def test_machine_token_reads_the_run(kfp_m2m_client: Any, hello_run: FinishedRun) -> None:
    """The m2m path: a namespace token, no browser session, reads the user's run as it ended."""
    assert str(kfp_m2m_client.get_run(hello_run.run_id).state) == hello_run.state


@pytest.mark.parametrize("kind", ["iris", "mnist"])
def test_sample_pipeline_succeeds(kf_target: Target, sample_runs: dict[str, FinishedRun], kind: str) -> None:
    """The training pipelines on KFP (at the local target they ran under kfp.local when it started:
    test_sample_pipelines_ran_with_kfp_local)."""
    kf_target.require(KFP)
    run = sample_runs[kind]
    assert run.succeeded, run.describe()


def test_sample_pipelines_ran_with_kfp_local(kf_target: Target) -> None:
    """At the local target the sample pipelines ran under kfp.local; their outputs are what it serves."""
    if kf_target.local is None:
        pytest.skip("NOT RUN: only the local target runs the sample pipelines with kfp.local; on a stack "
                    "they run on KFP (test_hello_pipeline_succeeds, test_sample_pipeline_succeeds)")
    from pathlib import Path

    assert kf_target.local.hello_output == "Hello, local target!"
    namespace = kf_target.user(0).profile
    store = kf_target.local_store()
    # The namespace's pipeline root, as its kfp-launcher ConfigMap states it, inside the store's directory.
    root = store["launchers"][namespace]["data"]["defaultPipelineRoot"].split("://", 1)[1]
    for model_dir in kf_target.local.models[namespace].values():
        assert (Path(model_dir) / "model.joblib").is_file()
        assert Path(store["root"]) / root in Path(model_dir).parents, model_dir
