"""Talking to a model behind the gateway with KServe's V1 and V2 protocols.

Requests go to the gateway with the InferenceService's Host header, exactly as through Istio's
ingress gateway, and carry a bearer token or nothing: never a browser cookie, so what is tested
is the token's authority alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from smoke_tests.login import new_http_session

PROTOCOLS = ("v1", "v2")


@dataclass(frozen=True)
class ModelEndpoint:
    name: str
    namespace: str
    host: str
    gateway_url: str
    artifact: Path  # a local copy of the served model directory (model.joblib inside)
    instances: list[list[float]]
    expected: list[int]

    def path(self, protocol: str) -> str:
        if protocol == "v1":
            return f"/v1/models/{self.name}:predict"
        if protocol == "v2":
            return f"/v2/models/{self.name}/infer"
        raise ValueError(f"unknown protocol {protocol!r}")


def request_body(protocol: str, instances: list[list[float]]) -> dict[str, Any]:
    if protocol == "v1":
        return {"instances": instances}
    flat = [float(v) for row in instances for v in row]
    return {"inputs": [{"name": "input-0", "shape": [len(instances), len(instances[0])],
                        "datatype": "FP64", "data": flat}]}


def predictions(protocol: str, body: dict[str, Any]) -> list[Any]:
    """The predicted labels from a V1 (`predictions`) or V2 (`outputs[0].data`) answer."""
    if protocol == "v1":
        return list(body["predictions"])
    return list(body["outputs"][0]["data"])


def _headers(endpoint: ModelEndpoint, token: str | None) -> dict[str, str]:
    """The InferenceService's host, as Istio's gateway routes by it, and the bearer token if any."""
    return {"Host": endpoint.host, **({"Authorization": f"Bearer {token}"} if token is not None else {})}


def model_status(endpoint: ModelEndpoint, *, token: str | None, timeout: float = 10.0) -> requests.Response:
    """KServe's V1 model-ready call (`GET /v1/models/<name>`) through the gateway: 200 once the
    server has loaded the model and the gateway can reach it."""
    http = new_http_session(endpoint.gateway_url)
    return http.get(f"{endpoint.gateway_url}/v1/models/{endpoint.name}", headers=_headers(endpoint, token),
                    allow_redirects=False, timeout=timeout)


def predict(endpoint: ModelEndpoint, protocol: str, *, token: str | None,
            instances: list[list[float]] | None = None, timeout: float = 60.0) -> requests.Response:
    headers = {**_headers(endpoint, token), "Content-Type": "application/json"}
    http = new_http_session(endpoint.gateway_url)
    return http.post(endpoint.gateway_url + endpoint.path(protocol), headers=headers,
                     json=request_body(protocol, instances or endpoint.instances),
                     allow_redirects=False, timeout=timeout)
