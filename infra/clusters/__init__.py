"""Cluster providers: each yields a kubeconfig (secret) and a Kubernetes provider for it."""

from infra.clusters.base import Cluster, provision_cluster

__all__ = ["Cluster", "provision_cluster"]
