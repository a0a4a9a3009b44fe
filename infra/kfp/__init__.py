"""Kubeflow Pipelines pieces the project makes itself, where upstream's cannot be built here."""
