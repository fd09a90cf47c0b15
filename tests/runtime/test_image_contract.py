"""The runtime honours the image contract (``runtime/contract.py``): every variable the
builder and the engines set by the contract's names is the one the runtime reads, and
its defaults are the contract's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from runtime import contract
from runtime.config import Settings
from runtime.datacollection.settings import CollectionSettings

from .conftest import REPO


def test_the_settings_read_the_contracts_names(tmp_path):
    settings = Settings.load({
        contract.ENV_APP_ROOT: str(tmp_path), contract.ENV_DRIVER: "drv.py", contract.ENV_RUNTIME_TYPE: "SparkPython",
        contract.ENV_KEYS_FILE: contract.KEYS_FILE, contract.ENV_INSTANCE: "moma-a-b-g2",
        contract.ENV_INSTANCE_ID: "0f0f", contract.ENV_MAX_CONCURRENT_REQUESTS: "3"})
    assert (settings.app_root, settings.driver, settings.runtime_type) == (str(tmp_path), "drv.py", "SparkPython")
    assert (settings.keys_file, settings.instance, settings.instance_id) == (contract.KEYS_FILE, "moma-a-b-g2", "0f0f")
    assert settings.max_concurrent == 3


def test_data_collection_reads_the_contracts_names():
    settings = CollectionSettings.load({
        contract.ENV_DC_STORAGE_ENABLED: "true", contract.ENV_DC_LOCAL_DIR: contract.DATA_MOUNT,
        contract.ENV_DC_STORAGE: "https://account.example/modeldata-x?sig=s", contract.ENV_SERVICE_NAME: "iris",
        contract.ENV_IMAGE_ID: "img-1"})
    assert settings.storage_enabled and settings.local_dir == contract.DATA_MOUNT
    assert settings.connection_string == "https://account.example/modeldata-x?sig=s"
    assert (settings.service_name, settings.image_id) == ("iris", "img-1")


def _server_settings(env: dict[str, str]) -> dict:
    code = ("import json, runtime.server.gunicorn_conf as c; "
            "print(json.dumps({'bind': c.bind, 'workers': c.workers, 'reuse_port': c._reuse_port}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MOMA_", "MAX_", "PORT", "REUSE_", "WORKERS"))}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_server_listens_where_the_contract_says():
    assert _server_settings({})["bind"] == [f"0.0.0.0:{contract.PORT}"]
    placed = _server_settings({contract.ENV_PORT: "31000", contract.ENV_BIND: "127.0.0.1",
                               contract.ENV_REUSE_PORT: "true", contract.ENV_WORKERS: "3"})
    assert placed == {"bind": ["127.0.0.1:31000"], "workers": 3, "reuse_port": True}


def test_the_command_and_health_check_name_modules_that_exist():
    config = contract.GUNICORN_CONFIG.removeprefix("python:")
    for module in (config, contract.WSGI_APP.split(":")[0], contract.HEALTHCHECK[-1]):
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), module
