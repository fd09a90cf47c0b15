import pytest

from builder.base_images import base_image_id
from builder.config import BuilderConfig
from builder.engine import DockerEngine
from builder.errors import BaseImageError

pytestmark = pytest.mark.docker


def test_present_base_image_is_used(docker_client):
    config = BuilderConfig.from_env()
    assert base_image_id(DockerEngine(docker_client), config, "3.11", lambda line: None) == \
        docker_client.images.get(config.base_image("3.11")).id


def test_a_python_without_recipe_or_registry_is_a_clear_error(docker_client, tmp_path):
    config = BuilderConfig.from_env({"MOMA_HOME": str(tmp_path),
                                     "MOMA_BASE_IMAGE_TEMPLATE": "moma-test-missing/python:{version}"})
    with pytest.raises(BaseImageError) as caught:
        base_image_id(DockerEngine(docker_client), config, "3.6", lambda line: None)
    message = str(caught.value)
    assert "Python 3.6: base image moma-test-missing/python:3.6 is not present and cannot be pulled" in message
    assert "bootstrap base images for Python 3.11 only" in message
