"""The smallest v2 pipeline: proves the pipeline API, the workflow engine and a launcher work."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from kfp import dsl

from smoke_tests.pipelines.common import BASE_IMAGE

GREETING = "Hello, {}!"


@dsl.component(base_image=BASE_IMAGE)
def say_hello(recipient: str) -> str:
    message = f"Hello, {recipient}!"
    print(message)
    return message


@dsl.pipeline(name="kfstack-smoke-hello", description="Prints and returns a greeting.")
def hello_pipeline(recipient: str = "Kubeflow") -> str:
    return say_hello(recipient=recipient).output
