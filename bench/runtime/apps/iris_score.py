"""2017-style driver for the benchmark (our runtime and azureml-inference-server-http):
run() gets the raw body text, one row of iris features under "data"."""
import json

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load("model.pkl")


def run(raw_data):
    data = np.asarray(json.loads(raw_data)["data"], dtype=np.float64)
    return model.predict(data).tolist()
