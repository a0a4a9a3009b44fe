"""Kubeflow manifests: where the tree comes from, which parts are selected, and the render."""
