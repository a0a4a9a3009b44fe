"""T1: the apply order and awaits, checked over the real render of upstream v1.11.0.

Defects only a real cluster shows, caught here from the render alone: an injected workload awaited
before Istio's CNI node agent can never become ready (its `istio-validation` init container waits
for the plugin), and a webhook whose CA nobody awaits fails the next phase with an x509 error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.apply import PHASES, WAIT_FOR_ANNOTATION, WEBHOOK_KINDS, WORKLOAD_KINDS, phase_of, with_awaits
from infra.config import parse_stack_config
from infra.manifests.objects import Rendered
from infra.manifests.render import render
from tests.helpers import base_raw

pytestmark = pytest.mark.render


@pytest.fixture(scope="module")
def kind_render(manifests_tree: Path) -> Rendered:
    raw = base_raw(cluster={"provider": "kind", "name": "kubeflow"}, storage={"mode": "local-path"})
    return render(parse_stack_config("test", raw, {"auth"}), manifests_tree)


def _pod_template(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template") or {}


def is_injected(obj: dict[str, Any], injected_namespaces: set[str]) -> bool:
    """Whether Istio's injector gives this workload's pods a sidecar (and so the CNI check)."""
    meta = _pod_template(obj).get("metadata") or {}
    says = (meta.get("labels") or {}).get("sidecar.istio.io/inject",
                                           (meta.get("annotations") or {}).get("sidecar.istio.io/inject"))
    if says is not None:
        return str(says).lower() == "true"
    return obj["metadata"].get("namespace", "") in injected_namespaces


def test_no_injected_workload_is_awaited_before_the_istio_cni_agent(kind_render: Rendered) -> None:
    (cni,) = kind_render.find("DaemonSet", "istio-cni-node", "kube-system")
    cni_phase = PHASES.index(phase_of(cni))
    namespaces = {n["metadata"]["name"] for n in kind_render.find("Namespace")
                  if (n["metadata"].get("labels") or {}).get("istio-injection") == "enabled"}
    injected = [o for o in kind_render.objects if o["kind"] in WORKLOAD_KINDS and is_injected(o, namespaces)]
    assert len(injected) > 10, "expected many injected workloads in the full release"
    early = [f"{o['kind']} {o['metadata'].get('namespace')}/{o['metadata']['name']} ({phase_of(o)})"
             for o in injected if PHASES.index(phase_of(o)) <= cni_phase]
    assert early == [], f"awaited in or before the CNI agent's phase ({phase_of(cni)}): {early}"


def test_every_istio_part_is_in_the_istio_phase(kind_render: Rendered) -> None:
    parts = [o for o in kind_render.objects if o["kind"] in WORKLOAD_KINDS | WEBHOOK_KINDS
             and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") == "istio"]
    assert {o["metadata"]["name"] for o in parts} >= {"istiod", "istio-cni-node", "istio-ingressgateway"}
    assert {o["metadata"]["name"]: phase_of(o) for o in parts} == {o["metadata"]["name"]: "istio" for o in parts}


def test_every_webhook_without_a_ca_in_the_render_is_awaited(kind_render: Rendered) -> None:
    listing = []
    for obj in kind_render.objects:
        if obj["kind"] not in WEBHOOK_KINDS:
            continue
        annotations = obj["metadata"].get("annotations") or {}
        source = (annotations.get("cert-manager.io/inject-ca-from")
                  or annotations.get("cert-manager.io/inject-ca-from-secret") or "its own controller")
        awaited = (with_awaits(obj)["metadata"].get("annotations") or {}).get(WAIT_FOR_ANNOTATION, "")
        for i, hook in enumerate(obj.get("webhooks") or []):
            has_ca = bool((hook.get("clientConfig") or {}).get("caBundle"))
            listing.append((obj["metadata"]["name"], i, source, has_ca, awaited))
            assert has_ca or f"webhooks[{i}].clientConfig.caBundle" in awaited, (obj["metadata"]["name"], i)
    print("\n".join(f"{n}[{i}] injected by {s}: {'ships a CA' if c else a}" for n, i, s, c, a in listing))
    names = {n for n, *_ in listing}
    # cert-manager's own webhooks (CA from a Secret) and Knative's (filled by its controller) included.
    assert {"cert-manager-webhook", "webhook.serving.knative.dev"} <= names


def test_no_webhook_is_applied_with_an_empty_ca_bundle(kind_render: Rendered) -> None:
    empty = [o["metadata"]["name"] for o in kind_render.objects if o["kind"] in WEBHOOK_KINDS
             for h in o.get("webhooks") or [] if "caBundle" in (h.get("clientConfig") or {})
             and not h["clientConfig"]["caBundle"]]
    assert empty == []


def test_aggregated_cluster_roles_come_before_the_roles_they_gather(kind_render: Rendered) -> None:
    """So a removal deletes them last (see infra/apply.py): the aggregation controller would
    otherwise re-create a deleted one while the roles it gathers are still being deleted."""
    from infra.apply import aggregating_roles, is_aggregated_role, roles_first

    roles = [o for o in kind_render.objects if o["kind"] == "ClusterRole"]
    aggregators = {o["metadata"]["name"]: o for o in roles if is_aggregated_role(o)}
    assert {"kubeflow-admin", "kubeflow-edit"} <= set(aggregators)
    order = [o["metadata"]["name"] for o in roles_first(roles, aggregators)]
    gathered = {o["metadata"]["name"]: aggregating_roles(o, aggregators) for o in roles}
    assert gathered["kubeflow-edit"] == ["kubeflow-admin"]
    for name, gatherers in gathered.items():
        for gatherer in gatherers:
            assert order.index(gatherer) < order.index(name), (gatherer, name)


def test_kserves_first_apply_is_ordered_by_phases_and_awaits(kind_render: Rendered) -> None:
    """Upstream's one-shot apply of KServe fails its first time: its serving runtimes reach the API
    server before the webhook that validates them has a CA and a running server behind it. Here the
    definitions come first, the webhook's certificate next, the controller (awaited available)
    before the webhook configurations (each awaited until cert-manager injects its CA), and the
    KServe objects that the webhooks validate last (the live tier's first `pulumi up` then succeeds
    as it is)."""
    order = {phase: index for index, phase in enumerate(PHASES)}
    kserve = [o for o in kind_render.objects if "kserve" in o["apiVersion"] or "kserve" in o["metadata"]["name"]]
    crds = [o for o in kserve if o["kind"] == "CustomResourceDefinition"]
    hooks = [o for o in kserve if o["kind"] in WEBHOOK_KINDS]
    instances = [o for o in kind_render.objects if o["apiVersion"].startswith("serving.kserve.io/")]
    [controller] = kind_render.find("Deployment", "kserve-controller-manager", "kubeflow")
    [certificate] = kind_render.find("Certificate", "serving-cert", "kubeflow")
    assert crds and hooks and instances
    assert {phase_of(o) for o in crds} == {"foundation"}
    assert order[phase_of(certificate)] < order[phase_of(controller)]
    assert all(order[phase_of(controller)] < order[phase_of(h)] for h in hooks)
    assert all(WAIT_FOR_ANNOTATION in with_awaits(h)["metadata"]["annotations"] for h in hooks)
    last_hook = max(order[phase_of(h)] for h in hooks)
    assert all(order[phase_of(o)] > last_hook for o in instances), sorted({o["kind"] for o in instances})
