"""The smallest v2 pipeline: proves the pipeline API, the workflow engine and a launcher work."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from kfp import dsl

from smoke_tests.pipelines.common import StepImage, sized

GREETING = "Hello, {}!"


def say_hello(recipient: str) -> str:
    message = f"Hello, {recipient}!"
    print(message)
    return message


def build_hello_pipeline(step: StepImage | None = None):
    """The hello pipeline with its step's image (default: kfp's way, installing kfp at run time)."""
    greet = dsl.component(say_hello, **(step or StepImage()).component_options([]))

    @dsl.pipeline(name="kfstack-smoke-hello", description="Prints and returns a greeting.")
    def hello_pipeline(recipient: str = "Kubeflow") -> str:
        return sized(greet(recipient=recipient)).output

    return hello_pipeline


hello_pipeline = build_hello_pipeline()
