"""A driver written for the original service: score.py + service_schema.json (pandas
input, type 3) + an iris scikit-learn model loaded by relative path, unmodified."""

from __future__ import annotations

import json

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

SETOSA = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5,
          "petal length (cm)": 1.4, "petal width (cm)": 0.2}
VIRGINICA = {"sepal length (cm)": 7.7, "sepal width (cm)": 3.0,
             "petal length (cm)": 6.1, "petal width (cm)": 2.3}


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    frame = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(frame.data, frame.target)
    path = tmp_path_factory.mktemp("model") / "model.pkl"
    joblib.dump(model, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def iris(serve_shared, iris_model):
    return serve_shared("score.py", copy=("service_schema.json",), files={"model.pkl": iris_model})


def test_pandas_input_reaches_run_as_a_dataframe(iris):
    response = iris.score({"input_df": [SETOSA, VIRGINICA]})
    assert response.status_code == 200, response.text
    # run() returned json.dumps([...]); the original encoded that string again
    assert response.text == json.dumps(json.dumps([0, 2]))
    assert json.loads(response.json()) == [0, 2]
    assert response.headers["x-ms-run-function-failed"] == "False"


def test_schema_validation_names_the_failing_path(iris):
    bad = dict(SETOSA, **{"petal width (cm)": "wide"})
    response = iris.score({"input_df": [SETOSA, bad]})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bad_input"
    assert body["message"].startswith("input_df/1/petal width (cm): ")
    assert "'wide' is not of type 'number'" in body["message"]


@pytest.mark.parametrize("body, fragment", [
    ({"input_df": [SETOSA], "extra": 1}, "unknown input key(s) ['extra']"),
    ({}, "'input_df' is a required property"),
    ([SETOSA], "must be a JSON object"),
    ({"input_df": {"not": "a list"}}, "input_df: "),
])
def test_bad_bodies_are_400(iris, body, fragment):
    response = iris.score(body)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_input"
    assert fragment in response.json()["message"]


def test_invalid_json_is_400(iris):
    response = iris.request("POST", "/score", data="{not json",
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_swagger_has_the_input_example(iris):
    doc = iris.get("/swagger.json").json()
    service_input = doc["definitions"]["ServiceInput"]
    assert service_input["example"] == {"input_df": [SETOSA]}
    assert list(service_input["properties"]["input_df"]["items"]["properties"]) == list(SETOSA)
    assert doc["definitions"]["ServiceOutput"] == {"type": "string"}
    assert "Bearer" in doc["securityDefinitions"]
    assert "internal" not in json.dumps(doc)


def test_unusable_schema_is_failed_state(serve):
    server = serve("ok.py", wait="/livez",
                   files={"service_schema.json": json.dumps(
                       {"input": {"df": {"swagger": {"type": "array"}, "type": 2}}})})
    ready = server.get("/readyz")
    assert ready.status_code == 503
    assert "SparkPython" in ready.json()["message"]
    assert server.score({"df": []}).json()["code"] == "not_ready"
