"""The stack's settings, one pydantic model per concern (cluster, kubeflow and storage, auth), each
defined once: the stack config, the cluster components' inputs and the conformance teardown plan
all read them, and `kfstack config schema` prints their JSON Schema. `infra/config.py` parses a
stack's raw config into them and reports every problem at once.
"""
