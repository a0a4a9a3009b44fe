"""Run the sample pipelines with `kfp.local` (subprocess runner, no Docker) and say where the models are.

Run as `python -m smoke_tests.pipelines.run_local --root DIR --mnist-source digits`; it prints one
JSON object naming each exported artifact. It runs in its own process because `kfp.local.init`
sets process-wide state and its steps print a great deal (the caller keeps that as a log).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalModels:
    hello: str
    iris_model: str
    mnist_model: str
    mnist_samples: str
    mnist_source: str
    iris_run: str  # kfp.local's run name, the first path segment under the pipeline root
    mnist_run: str


def run_of(root: Path, artifact_path: str) -> str:
    """The run an artifact belongs to: kfp.local writes <root>/<run>/<task>/<output>."""
    return Path(artifact_path).resolve().relative_to(root.resolve()).parts[0]


def run_all(root: Path, mnist_source: str) -> LocalModels:
    from kfp import local

    from smoke_tests.pipelines.common import LOCAL_PACKAGES
    from smoke_tests.pipelines.hello import hello_pipeline
    from smoke_tests.pipelines.iris import build_iris_pipeline
    from smoke_tests.pipelines.mnist import build_mnist_pipeline

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    hello = hello_pipeline(recipient="local target")
    iris = build_iris_pipeline(list(LOCAL_PACKAGES))()
    mnist = build_mnist_pipeline(list(LOCAL_PACKAGES))(source=mnist_source, train_size=6000)
    return LocalModels(hello=str(hello.output), iris_model=iris.outputs["model"].path,
                       mnist_model=mnist.outputs["model"].path,
                       mnist_samples=mnist.outputs["samples"].path, mnist_source=mnist_source,
                       iris_run=run_of(root, iris.outputs["model"].path),
                       mnist_run=run_of(root, mnist.outputs["model"].path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="kfp.local pipeline root")
    parser.add_argument("--mnist-source", choices=("mnist", "digits"), default="digits")
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    models = run_all(args.root, args.mnist_source)
    # The last line of output is the result; everything before it is the steps' logs.
    print(json.dumps(asdict(models)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
