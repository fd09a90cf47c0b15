"""Artifact upload (a moma extension): stream octet-stream bytes, get a content-addressed
``artifact://sha256/<hex>/<name>`` URL, register it; limits and refusals."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Callable

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from management.config import Settings
from management.store import Store

from ..helpers import Api, check_error, manifest_body, model_body

CONTENT = b"\x80\x04 a pickled model \x00" * 1000


def upload(api: Api, data: bytes | io.BytesIO, name: str = "model.pkl",
           content_type: str | None = "application/octet-stream", params_extra: dict[str, str] | None = None,
           **kwargs) -> TestResponse:
    return api.call("POST", "/artifacts", params={"name": name, **(params_extra or {})}, data=data,
                    content_type=content_type, **kwargs)


def stored_files(home: Path) -> list[Path]:
    root = Settings.load(home=home).artifact_dir
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_upload_returns_a_content_addressed_url(api: Api, home: Path) -> None:
    response = upload(api, CONTENT)

    assert response.status_code == 200
    artifact = response.get_json()
    digest = hashlib.sha256(CONTENT).hexdigest()
    assert artifact == {"url": f"artifact://sha256/{digest}/model.pkl", "sha256": digest, "size": len(CONTENT)}
    [stored] = stored_files(home)
    assert stored.name == digest and stored.read_bytes() == CONTENT


def test_the_same_bytes_are_stored_once(api: Api, home: Path) -> None:
    first = upload(api, CONTENT, "a.pkl").get_json()
    second = upload(api, CONTENT, "b.pkl").get_json()

    assert first["sha256"] == second["sha256"] and first["url"] != second["url"]
    assert len(stored_files(home)) == 1


def test_register_a_model_and_a_manifest_with_uploaded_urls(api: Api) -> None:
    model_url = upload(api, CONTENT).get_json()["url"]
    driver_url = upload(api, b"def init(): pass\ndef run(x): return x\n", "score.py").get_json()["url"]

    model = api.register_model(url=model_url, unpack=False)
    body = manifest_body([model["id"]])
    body["assets"] = [{"id": "driver", "url": driver_url, "mimeType": "application/x-python"}]
    manifest = api.ok("POST", "/manifests", body)

    assert model["url"] == model_url
    assert manifest["assets"][0]["url"] == driver_url


def test_an_artifact_of_another_account_is_refused(api: Api, other_account) -> None:
    scope, token = other_account
    url = upload(api.as_account(scope, token), CONTENT).get_json()["url"]

    response = api.post("/models", model_body(url=url))

    assert response.status_code == 400
    assert "not uploaded" in check_error(response)["message"]


@pytest.mark.parametrize("url", ["artifact://sha256/abc/model.pkl", f"artifact://md5/{'0' * 64}/model.pkl",
                                 f"artifact://sha256/{'0' * 64}/model.pkl", f"artifact://sha256/{'0' * 64}"])
def test_artifact_urls_that_were_not_handed_out_are_refused(api: Api, url: str) -> None:
    response = api.post("/models", model_body(url=url))

    assert response.status_code == 400
    assert check_error(response)["details"][0]["message"].startswith("url: ")


@pytest.mark.parametrize("name", ["", "../etc/passwd", ".hidden", "a b.pkl", "dir/model.pkl", "x" * 256,
                                  "naïve.pkl"])
def test_a_bad_name_is_400(api: Api, home: Path, name: str) -> None:
    response = upload(api, CONTENT, name)

    assert response.status_code == 400
    check_error(response)
    assert stored_files(home) == []


@pytest.mark.parametrize("content_type", [None, "application/json", "multipart/form-data; boundary=x",
                                          "text/plain"])
def test_a_wrong_content_type_is_415(api: Api, home: Path, content_type: str | None) -> None:
    response = upload(api, CONTENT, content_type=content_type)

    assert response.status_code == 415
    check_error(response)
    assert stored_files(home) == []


def test_over_the_limit_is_413_and_nothing_is_stored(make_app: Callable[..., Flask], admin_token: str,
                                                     home: Path, store: Store) -> None:
    api = Api(make_app(max_artifact_bytes=1000).test_client(), admin_token)
    digest = hashlib.sha256(b"x" * 1001).hexdigest()

    assert upload(api, b"x" * 1000, "fits.bin").status_code == 200
    declared = upload(api, b"x" * 1001)
    streamed = upload(api, io.BytesIO(b"x" * 1001), headers={"Transfer-Encoding": "chunked"},
                      environ_overrides={"wsgi.input_terminated": True})

    for response in (declared, streamed):
        assert response.status_code == 413
        assert "1000" in check_error(response)["message"]
    assert [path.name for path in stored_files(home)] == [hashlib.sha256(b"x" * 1000).hexdigest()]
    account = store.accounts.find("default", "default", "default")
    assert account is not None and not store.artifacts.owned(account.id, digest)


def test_the_artifact_limit_is_not_the_json_body_limit(make_app: Callable[..., Flask], admin_token: str) -> None:
    api = Api(make_app(max_body_bytes=100).test_client(), admin_token)

    assert upload(api, CONTENT).status_code == 200


def test_a_digest_sent_along_must_match(api: Api, home: Path, store: Store) -> None:
    right = upload(api, CONTENT, params_extra={"sha256": hashlib.sha256(CONTENT).hexdigest()})
    wrong = upload(api, b"other bytes", params_extra={"sha256": hashlib.sha256(CONTENT + b"!").hexdigest()})

    assert right.status_code == 200 and right.get_json()["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert wrong.status_code == 400 and "nothing was stored" in check_error(wrong)["message"]
    assert [path.name for path in stored_files(home)] == [hashlib.sha256(CONTENT).hexdigest()]
    account = store.accounts.find("default", "default", "default")
    assert account is not None and not store.artifacts.owned(account.id, hashlib.sha256(CONTENT + b"!").hexdigest())


@pytest.mark.slow
def test_with_artifact_storage_uploads_go_to_blob_storage(make_app: Callable[..., Flask], admin_token: str,
                                                         home: Path, azurite) -> None:
    from management.blob_artifacts import BlobArtifacts

    api = Api(make_app(artifact_storage=azurite.connection_string).test_client(), admin_token)
    data = CONTENT + home.as_posix().encode()  # content of this test only: the emulator lives for the session
    digest = hashlib.sha256(data).hexdigest()

    streamed = upload(api, data, params_extra={"sha256": digest})
    spooled = upload(api, io.BytesIO(data), "again.pkl", headers={"Transfer-Encoding": "chunked"},
                     environ_overrides={"wsgi.input_terminated": True})
    refused = upload(api, data, params_extra={"sha256": "0" * 64})

    assert streamed.get_json() == {"url": f"artifact://sha256/{digest}/model.pkl", "sha256": digest,
                                   "size": len(data)}
    assert spooled.status_code == 200 and spooled.get_json()["sha256"] == digest
    assert refused.status_code == 400
    assert stored_files(home) == []
    assert digest in set(BlobArtifacts(azurite.connection_string).digests())
    model = api.register_model(url=streamed.get_json()["url"], unpack=False)
    assert model["url"] == f"artifact://sha256/{digest}/model.pkl"
