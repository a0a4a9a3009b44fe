"""Profiles: one Kubeflow Profile per configured user or group, with an optional quota.

Upstream's user-namespace component creates the demo profile for user@example.com; it is
replaced by the stack's own list (which, on a dev stack with no users set, is that same user).
"""

from __future__ import annotations

from typing import Any

from infra.config import ProfileConfig, StackConfig
from infra.manifests.objects import Rendered

PROFILE_API = "kubeflow.org/v1"
Obj = dict[str, Any]


def quota_hard(profile: ProfileConfig) -> dict[str, str]:
    q = profile.quota
    if q is None:
        return {}
    hard = {"cpu": q.cpu, "memory": q.memory, "requests.nvidia.com/gpu": q.gpu,
            "persistentvolumeclaims": None if q.pvcs is None else str(q.pvcs),
            "requests.storage": q.storage}
    return {k: v for k, v in hard.items() if v is not None}


def profile_object(profile: ProfileConfig) -> Obj:
    spec: Obj = {"owner": {"kind": profile.owner_kind, "name": profile.owner}}
    hard = quota_hard(profile)
    if hard:
        spec["resourceQuotaSpec"] = {"hard": hard}
    return {"apiVersion": PROFILE_API, "kind": "Profile",
            "metadata": {"name": profile.name,
                         "labels": {"app.kubernetes.io/managed-by": "kubeflow-stacks"}},
            "spec": spec}


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    if "profiles" not in rendered.components:
        return  # no Profile CRD or controller to serve them
    rendered.objects[:] = [o for o in rendered.objects if o["kind"] != "Profile"]
    rendered.objects.extend(profile_object(p) for p in cfg.profiles)
    rendered.adjustments.append("profiles")
