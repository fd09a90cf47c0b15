"""Run with the mlflow venv's python: wrap model.pkl as an MLflow model directory."""
import sys

import joblib
import mlflow.sklearn

mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2])
