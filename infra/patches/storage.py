"""Storage: the default StorageClass, an optional provisioner, and every claim's class and size.

Modes: `existing` uses a class the cluster already has (kind's and minikube's `standard`, a
cloud's block storage); `local-path` and `nfs-subdir` deploy a provisioner and make its class the
default; `static` pre-creates one PersistentVolume per claim, for clusters with no provisioner
(air-gapped nodes, and the simulated cluster).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from infra.config import ConfigError, Problem, StackConfig
from infra.manifests.objects import Rendered

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
PROVISIONER_NAMESPACE = "kubeflow-storage"
LABELS = {"app.kubernetes.io/managed-by": "kubeflow-stacks", "app.kubernetes.io/part-of": "storage"}

Obj = dict[str, Any]


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    storage = cfg.storage
    claims = rendered.find("PersistentVolumeClaim")
    names = {c["metadata"]["name"] for c in claims}
    unknown = sorted(set(storage.claims) - names)
    if unknown:  # refused with the config already, unless the release map's claims disagree with the tree
        raise ConfigError([Problem(f"storage.claims.{n}", n, f"no such claim in the rendered "
                                   f"components; claims are: {', '.join(sorted(names)) or 'none'}")
                           for n in unknown])
    for claim in claims:
        override = storage.claims.get(claim["metadata"]["name"])
        spec = claim["spec"]
        spec["storageClassName"] = (override.storage_class if override and override.storage_class
                                    else storage.default_class)
        if override and override.size:
            spec.setdefault("resources", {}).setdefault("requests", {})["storage"] = override.size
    extra: list[Obj] = []
    if storage.mode == "static":
        extra = static_volumes(cfg, claims)
    elif storage.mode == "local-path":
        extra = local_path_provisioner(cfg)
    elif storage.mode == "nfs-subdir":
        extra = nfs_subdir_provisioner(cfg)
    rendered.objects.extend(extra)
    rendered.adjustments.append(f"storage:{storage.mode}")


def storage_class(name: str, provisioner: str, *, binding: str = "WaitForFirstConsumer",
                  parameters: dict[str, str] | None = None, reclaim: str = "Delete") -> Obj:
    """The stack's default class. Expansion is allowed so a larger claim size in config applies."""
    sc: Obj = {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name, "labels": dict(LABELS),
                     "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": provisioner, "reclaimPolicy": reclaim, "volumeBindingMode": binding,
        "allowVolumeExpansion": True,
    }
    if parameters:
        sc["parameters"] = parameters
    return sc


def static_volumes(cfg: StackConfig, claims: list[Obj]) -> list[Obj]:
    """One PersistentVolume per claim, pre-bound through claimRef, under a no-provisioner class."""
    objects: list[Obj] = [storage_class(cfg.storage.default_class, "kubernetes.io/no-provisioner",
                                        binding="Immediate", reclaim="Retain")]
    for claim in claims:
        meta, spec = claim["metadata"], claim["spec"]
        if spec["storageClassName"] != cfg.storage.default_class:
            continue  # another class was asked for: its provisioner serves the claim
        ns, name = meta.get("namespace", "default"), meta["name"]
        objects.append({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"{ns}-{name}", "labels": dict(LABELS)},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": list(spec.get("accessModes", ["ReadWriteOnce"])),
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": cfg.storage.default_class,
                "claimRef": {"namespace": ns, "name": name},
                "hostPath": {"path": f"{cfg.storage.static_host_path}/{ns}/{name}",
                             "type": "DirectoryOrCreate"},
            },
        })
    return objects


def _provisioner(name: str, image: str, env: list[Obj], volumes: list[Obj], mounts: list[Obj],
                 rules: list[Obj], args: list[str] | None = None) -> list[Obj]:
    """The objects every out-of-tree provisioner needs: namespace, account, RBAC and a Deployment."""
    ns = PROVISIONER_NAMESPACE
    meta = lambda n, namespaced=True: (  # noqa: E731
        {"name": n, "namespace": ns, "labels": dict(LABELS)} if namespaced
        else {"name": n, "labels": dict(LABELS)})
    container: Obj = {"name": name, "image": image, "env": env, "volumeMounts": mounts}
    if args:
        container["args"] = args
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(ns, False)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": meta(f"kubeflow-stacks-{name}", False), "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": meta(f"kubeflow-stacks-{name}", False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"kubeflow-stacks-{name}"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name),
         "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
                  "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"serviceAccountName": name, "containers": [container],
                                        "volumes": volumes}}}},
    ]


_PROVISIONER_RULES: list[Obj] = [
    {"apiGroups": [""], "resources": ["persistentvolumes"],
     "verbs": ["get", "list", "watch", "create", "delete", "patch", "update"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "watch", "update"]},
    {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "update", "patch"]},
    {"apiGroups": [""], "resources": ["nodes", "pods", "configmaps", "endpoints"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
     "verbs": ["get", "list", "watch", "create", "update", "patch"]},
]


def local_path_provisioner(cfg: StackConfig) -> list[Obj]:
    """Rancher's local-path provisioner: node-local directories, for single-node clusters."""
    from infra.versions import load_versions

    image = load_versions().images["local-path-provisioner"]
    name = "local-path-provisioner"
    config = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                               "paths": [cfg.storage.static_host_path]}]}
    helper_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"},
                  "spec": {"containers": [{"name": "helper-pod", "image": load_versions().images["busybox"],
                                           "imagePullPolicy": "IfNotPresent"}]}}
    setup = "#!/bin/sh\nset -eu\nmkdir -m 0777 -p \"$VOL_DIR\"\n"
    teardown = "#!/bin/sh\nset -eu\nrm -rf \"$VOL_DIR\"\n"
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "local-path-config", "namespace": PROVISIONER_NAMESPACE, "labels": dict(LABELS)},
          "data": {"config.json": json.dumps(config, indent=2), "setup": setup, "teardown": teardown,
                   "helperPod.yaml": yaml.safe_dump(helper_pod, sort_keys=False)}}
    objs = _provisioner(
        name, image,
        env=[{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
             {"name": "CONFIG_MOUNT_PATH", "value": "/etc/config/"}],
        volumes=[{"name": "config-volume", "configMap": {"name": "local-path-config"}}],
        mounts=[{"name": "config-volume", "mountPath": "/etc/config/"}],
        rules=_PROVISIONER_RULES,
        args=["start", "--config", "/etc/config/config.json"])
    return [*objs, cm, storage_class(cfg.storage.default_class, "rancher.io/local-path")]


def nfs_subdir_provisioner(cfg: StackConfig) -> list[Obj]:
    """The nfs-subdir external provisioner: one sub-directory per claim on an existing NFS export."""
    from infra.versions import load_versions

    name = "nfs-subdir-external-provisioner"
    provisioner = "kubeflow-stacks/nfs-subdir"
    server, path = cfg.storage.nfs_server, cfg.storage.nfs_path
    objs = _provisioner(
        name, load_versions().images["nfs-subdir-external-provisioner"],
        env=[{"name": "PROVISIONER_NAME", "value": provisioner},
             {"name": "NFS_SERVER", "value": server}, {"name": "NFS_PATH", "value": path}],
        volumes=[{"name": "nfs-root", "nfs": {"server": server, "path": path}}],
        mounts=[{"name": "nfs-root", "mountPath": "/persistentvolumes"}],
        rules=_PROVISIONER_RULES)
    return [*objs, storage_class(cfg.storage.default_class, provisioner, binding="Immediate",
                                 parameters={"archiveOnDelete": "false"})]
