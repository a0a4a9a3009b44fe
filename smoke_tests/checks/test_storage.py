"""The pipeline artifact store as the user's namespace sees it: its pipeline root (from its
kfp-launcher ConfigMap) is readable with its own key, another namespace's root is not, and a run's
exported model is there and works."""

from __future__ import annotations

import io
from typing import Any

import pytest

from smoke_tests.pipelines.common import IRIS_EXPECTED, IRIS_INSTANCES

pytestmark = pytest.mark.storage

OTHER_NAMESPACE = "kfstack-smoke-not-this-namespace"


def test_namespace_lists_its_pipeline_root(artifact_store: Any) -> None:
    root = artifact_store.root
    assert root.scheme in ("minio", "s3"), root.uri
    # A wrong root or a key scoped elsewhere raises AccessDenied here.
    listed = list(artifact_store.client.list_objects(artifact_store.bucket, prefix=root.list_prefix))
    assert all(o.object_name.startswith(root.list_prefix) for o in listed), [o.object_name for o in listed]


def test_namespace_key_cannot_list_another_namespace(artifact_store: Any) -> None:
    """The key is scoped: if it could list another namespace's private artifacts, so could its pipelines."""
    from minio.error import S3Error

    prefix = f"private-artifacts/{OTHER_NAMESPACE}/"
    with pytest.raises(S3Error) as refused:
        list(artifact_store.client.list_objects(artifact_store.bucket, prefix=prefix, recursive=True))
    assert refused.value.code == "AccessDenied", refused.value


def test_iris_run_exported_a_working_model(artifact_store: Any, sample_runs: dict[str, Any]) -> None:
    """The run's model is under the namespace's pipeline root, readable with its key, and predicts."""
    import joblib

    run = sample_runs["iris"]
    assert run.succeeded, run.describe()
    key = artifact_store.find(run.run_id, "model/model.joblib")
    assert key.startswith(artifact_store.root.list_prefix), key
    model = joblib.load(io.BytesIO(artifact_store.read(key)))
    assert model.predict(IRIS_INSTANCES).tolist() == IRIS_EXPECTED
