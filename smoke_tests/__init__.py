"""The smoke suite: one set of checks that any Kubeflow stack, or the local conformance target, must pass."""
