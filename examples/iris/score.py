"""Scoring driver for the iris example, written as for the original service: init()
loads the model from the app root by relative path, run() gets the raw request body."""

import json

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load("model.pkl")


def run(raw_data):
    rows = np.array(json.loads(raw_data)["data"], dtype=float)
    return [model.target_names_[index] for index in model.predict(rows)]
