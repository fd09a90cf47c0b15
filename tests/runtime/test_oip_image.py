"""A real image built from the iris example answers the Open Inference Protocol: the
builder writes model_config_map.json, the runtime serves /v2 from it, tritonclient calls it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as triton

from builder.manifest import load_manifest

# the fixtures of tests/integration, used here by name
from tests.integration.conftest import builder, builder_config, iris_project, labels, moma_home, options, run_image  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROWS = [[5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]


def test_a_built_iris_image_answers_tritonclient(builder, options, iris_project: Path,  # noqa: F811
                                                 run_image):  # noqa: F811
    result = builder.build(load_manifest(iris_project / "manifest.yml"), options(name="iris-oip", tag="1"))
    service = run_image(result.reference)
    assert service.wait_until_answering("/v2/health/ready").status_code == 200, service.logs()
    on_score = requests.post(service.url + "/score", json={"data": ROWS}, timeout=10).json()

    with triton.InferenceServerClient(service.url.removeprefix("http://")) as oip:
        assert oip.is_server_live() and oip.is_model_ready("iris", "1")
        assert oip.get_model_metadata("iris")["versions"] == ["1"]
        tensor = triton.InferInput("data", [2, 4], "FP64")
        tensor.set_data_from_numpy(np.asarray(ROWS), binary_data=False)
        answer = oip.infer("iris", [tensor], model_version="1",
                           outputs=[triton.InferRequestedOutput("predict", binary_data=False)])
    assert answer.as_numpy("predict").tolist() == on_score == ["setosa", "virginica"]
    assert answer.get_response()["model_version"] == "1"
    # the image has orjson, so the answer is orjson's (json.dumps would put spaces in it)
    raw = requests.post(service.url + "/v2/models/iris/infer", json={"inputs": [
        {"name": "data", "shape": [1, 4], "datatype": "FP64", "data": ROWS[0]}]}, timeout=10)
    assert raw.content.startswith(b'{"model_name":"iris","model_version":"1",'), raw.content
