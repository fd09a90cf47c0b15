"""Train the example iris classifier and save it as model.pkl.

    python examples/iris/train.py [OUT_DIR] [--c 1.0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train(out_dir: Path, c: float = 1.0) -> Path:
    iris = load_iris()
    model = LogisticRegression(C=c, max_iter=1000).fit(iris.data, iris.target)
    model.target_names_ = list(iris.target_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.pkl"
    joblib.dump(model, path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).parent)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    arguments = parser.parse_args()
    print(train(arguments.out_dir, arguments.c))
