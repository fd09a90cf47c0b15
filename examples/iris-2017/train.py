"""Train the 2017 example's iris classifier on named columns and save it as model.pkl.

    python examples/iris-2017/train.py [OUT_DIR]
"""

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

if __name__ == "__main__":
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    iris = load_iris(as_frame=True)
    species = iris.target.map(dict(enumerate(iris.target_names)))
    model = LogisticRegression(max_iter=1000).fit(iris.data, species)
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out_dir / "model.pkl")
    print(out_dir / "model.pkl")
