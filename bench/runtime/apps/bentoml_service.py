"""BentoML peer: same model, same body {"data": [[...]]}."""
import bentoml
import joblib
import numpy as np


@bentoml.service(workers=2)
class Iris:
    def __init__(self) -> None:
        self.model = joblib.load("model.pkl")

    @bentoml.api
    def score(self, data: list[list[float]]) -> list[int]:
        return self.model.predict(np.asarray(data, dtype=np.float64)).tolist()
