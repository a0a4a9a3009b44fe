"""The pipeline artifact store: reachable with the pipelines' credentials, bucket present, a run's
artifacts in it."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.storage


def test_bucket_present(artifact_store: Any) -> None:
    assert artifact_store.client.bucket_exists(artifact_store.bucket) is True


def test_iris_run_artifacts_in_store(artifact_store: Any, trained_models: dict[str, Any]) -> None:
    keys = artifact_store.keys_of_run(trained_models["iris"].run_id)
    assert [k for k in keys if k.endswith("/model/model.joblib")] != [], keys
