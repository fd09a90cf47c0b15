"""The driver of a 2017 Azure ML project, unchanged: init() loads the model directory by
its relative path, run(input_df) gets a pandas DataFrame built from the schema and
returns json.dumps(...) of the species (the service encodes that string again, as the
original did)."""

import json

import joblib

model = None
labels = None


def init():
    global model, labels
    model = joblib.load("iris_model/model.pkl")
    with open("iris_model/labels.json") as handle:
        labels = json.load(handle)


def run(input_df):
    predictions = model.predict(input_df.to_numpy())
    return json.dumps([labels[index] for index in predictions])
