"""Train the 2017 example's iris classifier into the model DIRECTORY iris_model/ (the
weights, and the class labels they predict), as 2017 projects often registered a folder
rather than one file; and pack that folder as iris_model.tar.gz, the form manifest.yml
names for `moma build` (the one-shot command packs the folder itself).

    python examples/iris-2017/train.py [PROJECT_DIR]
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train(project: Path) -> Path:
    iris = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)  # named columns, as the schema sends
    directory = project / "iris_model"
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.pkl")
    (directory / "labels.json").write_text(json.dumps(list(iris.target_names)) + "\n")
    with tarfile.open(project / "iris_model.tar.gz", "w:gz") as archive:
        archive.add(directory, arcname=directory.name)
    return directory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", nargs="?", type=Path, default=Path(__file__).parent)
    print(train(parser.parse_args().project))
