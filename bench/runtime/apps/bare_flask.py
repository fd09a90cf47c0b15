"""The bare baseline: Flask + gunicorn calling predict, nothing else."""
import joblib
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)
model = joblib.load("model.pkl")


@app.post("/score")
def score():
    data = np.asarray(request.get_json()["data"], dtype=np.float64)
    return jsonify(model.predict(data).tolist())
