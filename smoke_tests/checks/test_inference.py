"""KServe inference through the gateway: iris answers [1, 1], MNIST classifies its held-out digits,
over both protocols; and the served model is exactly the one the iris pipeline trained."""

from __future__ import annotations

import pytest

from smoke_tests.inference import PROTOCOLS, ModelEndpoint, predict, predictions
from smoke_tests.secret import Secret

pytestmark = pytest.mark.inference


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", ["iris", "mnist"])
def test_model_predicts(served_models: dict[str, ModelEndpoint], owner_token: Secret, model: str,
                        protocol: str) -> None:
    endpoint = served_models[model]
    resp = predict(endpoint, protocol, token=owner_token.reveal())
    assert resp.status_code == 200, resp.text[:500]
    assert predictions(protocol, resp.json()) == endpoint.expected


def test_served_iris_is_the_trained_model(served_models: dict[str, ModelEndpoint], owner_token: Secret) -> None:
    """Train, then serve: the endpoint answers exactly as the pipeline's exported model does."""
    import joblib

    endpoint = served_models["iris"]
    probes = [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5], [5.9, 3.0, 4.2, 1.5], [6.1, 2.6, 5.6, 1.4],
              [4.9, 2.4, 3.3, 1.0], [7.2, 3.0, 5.8, 1.6]]
    local = joblib.load(endpoint.artifact / "model.joblib").predict(probes).tolist()
    resp = predict(endpoint, "v1", token=owner_token.reveal(), instances=probes)
    assert resp.status_code == 200, resp.text[:500]
    assert predictions("v1", resp.json()) == local
