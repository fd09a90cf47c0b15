"""Train the 2017 example's iris classifier on named columns and save it as model.pkl.

    python examples/iris-2017/train.py [OUT_DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train(out_dir: Path) -> Path:
    iris = load_iris(as_frame=True)
    species = iris.target.map(dict(enumerate(iris.target_names)))
    model = LogisticRegression(max_iter=1000).fit(iris.data, species)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.pkl"
    joblib.dump(model, path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).parent)
    print(train(parser.parse_args().out_dir))
