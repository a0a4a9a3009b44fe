"""One namespace's model server: KServe's own ModelServer serving scikit-learn model directories.

It plays a KServe sklearn predictor: each `--serve NAME=DIR` loads DIR/model.joblib and answers
the V1 (`/v1/models/NAME:predict`) and V2 (`/v2/models/NAME/infer`) protocols through KServe's
data plane, which converts the payloads; only the prediction itself is ours.

Run as `python -m infra.local_target.model_server --port P --serve sklearn-iris=/path/to/model`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

MODEL_FILE = "model.joblib"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve scikit-learn models with KServe's ModelServer.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--serve", action="append", required=True, metavar="NAME=DIR",
                        help="a model name and the directory holding its model.joblib")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # kserve parses sys.argv when imported; give it nothing of ours to misread.
    sys.argv = sys.argv[:1]
    import joblib
    import kserve
    from kserve.utils.utils import get_predict_input, get_predict_response

    class SklearnModel(kserve.Model):
        """A scikit-learn estimator behind KServe's V1 and V2 data plane."""

        def __init__(self, name: str, model_dir: Path) -> None:
            super().__init__(name)
            self.model_dir = model_dir
            self.estimator: Any = None

        def load(self) -> bool:
            self.estimator = joblib.load(self.model_dir / MODEL_FILE)
            self.ready = True
            return self.ready

        async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                          response_headers: dict[str, str] | None = None) -> Any:
            features = get_predict_input(payload)
            return get_predict_response(payload, self.estimator.predict(features), self.name)

    models = []
    for spec in args.serve:
        name, _, directory = spec.partition("=")
        model = SklearnModel(name, Path(directory))
        model.load()
        models.append(model)
    kserve.ModelServer(http_port=args.port, enable_grpc=False, workers=1).start(models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
