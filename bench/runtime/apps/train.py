"""Train the one-row iris model every case serves (run with the project venv)."""
import sys

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=1000).fit(X, y)
joblib.dump(model, sys.argv[1])
