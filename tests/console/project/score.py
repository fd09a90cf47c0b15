"""The iris driver with a service schema: run() gets the "data" rows as a list (type 0,
standard), and the schema's example fills the console's try-it panel."""

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load("model.pkl")


def run(data):
    return [model.target_names_[index] for index in model.predict(np.array(data, dtype=float))]
