"""``GET .../services/<id>/data`` and ``.../data/rows`` over files laid out as the
runtime's local sink writes them (the runtime side and the whole path through a
container are tested in tests/runtime and tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from management.engines import data_dir
from management.store import Store

from ..helpers import Api, check_error, create_service, service_id_of, succeeded_image

PREFIX = "local/local/local/svc/m1-iris-3"
HEADER = "$Timestamp,$CorrelationId,$RequestId,sepal length (cm),note\n"


def write(root: Path, identifier: str, day: str, text: str, name: str = "data.csv") -> None:
    path = root / "modeldata" / PREFIX / identifier / day.replace("-", "/") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def collecting(api: Api, store: Store, home: Path) -> tuple[str, Path]:
    """A service with dataCollection.storageEnabled and two days of rows in its local sink."""
    image = succeeded_image(api, store)
    service_id = service_id_of(api, create_service(api, image["id"], dataCollection={"storageEnabled": True}))
    root = data_dir(home / "services", service_id)
    write(root, "inputs", "2026-11-26", HEADER + '2026-11-26T23:59:59.999Z,,r1,5.1,"two\nlines"\n')
    write(root, "inputs", "2026-11-27", HEADER + "2026-11-27T00:00:00.000Z,c2,r2,4.9,\u2028x\n"
                                                 "2026-11-27T10:00:00.000Z,,r3,4.7,plain\n2026-11-27T10:00:01")
    write(root, "prediction", "2026-11-27", "$Timestamp,$CorrelationId,$RequestId,0\n"
                                            "2026-11-27T10:00:00.000Z,,r3,0\n")
    write(root, "inputs", "2026-11-27", "", name=".data.csv.1.2.tmp")
    return service_id, root


def test_lists_the_files_in_the_original_layout(api: Api, collecting):
    service_id, _ = collecting
    files = api.ok("GET", f"/services/{service_id}/data")["value"]
    assert [(f["identifier"], f["date"]) for f in files] == [
        ("inputs", "2026-11-26"), ("inputs", "2026-11-27"), ("prediction", "2026-11-27")]
    assert files[0]["path"] == f"modeldata/{PREFIX}/inputs/2026/11/26/data.csv"
    assert files[0]["model"] == "m1-iris-3" and files[0]["format"] == "csv" and files[0]["bytes"] > 0
    only = api.ok("GET", f"/services/{service_id}/data", params={"identifier": "prediction", "since": "2026-11-27"})
    assert [f["identifier"] for f in only["value"]] == ["prediction"]
    assert [f["date"] for f in api.ok("GET", f"/services/{service_id}/data", params={
        "since": "2026-11-27T09:00:00+02:00"})["value"]] == ["2026-11-27", "2026-11-27"]


def test_rows_have_one_header_and_complete_rows_only(api: Api, collecting):
    service_id, _ = collecting
    response = api.get(f"/services/{service_id}/data/rows", params={"identifier": "inputs"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.get_data(as_text=True) == (
        HEADER + '2026-11-26T23:59:59.999Z,,r1,5.1,"two\nlines"\n'
        "2026-11-27T00:00:00.000Z,c2,r2,4.9,\u2028x\n2026-11-27T10:00:00.000Z,,r3,4.7,plain\n")
    since = api.get(f"/services/{service_id}/data/rows", params={"identifier": "inputs",
                                                                  "since": "2026-11-27T00:00:00.001Z"})
    assert since.get_data(as_text=True) == HEADER + "2026-11-27T10:00:00.000Z,,r3,4.7,plain\n"
    nothing = api.get(f"/services/{service_id}/data/rows", params={"identifier": "nothing"})
    assert nothing.status_code == 200 and nothing.get_data() == b""


def test_json_lines_are_served_as_they_are(api: Api, collecting):
    service_id, root = collecting
    lines = ['{"timestamp":"2026-11-27T10:00:00.000Z","identifier":"nested","data":{"a":[1,2]}}\n',
             '{"timestamp":"2026-11-27T11:00:00.000Z","identifier":"nested","data":{"a":[3]}}\n']
    write(root, "nested", "2026-11-27", "".join(lines), name="data.jsonl")
    response = api.get(f"/services/{service_id}/data/rows", params={"identifier": "nested",
                                                                     "since": "2026-11-27T10:30:00"})
    assert response.mimetype == "application/x-ndjson" and response.get_data(as_text=True) == lines[1]


@pytest.mark.parametrize("params, fragment", [
    ({}, "identifier is required"),
    ({"identifier": "../x"}, "identifier must be"),
    ({"identifier": "inputs", "since": "yesterday"}, "since must be an ISO 8601 date"),
])
def test_bad_queries(api: Api, collecting, params, fragment):
    service_id, _ = collecting
    response = api.get(f"/services/{service_id}/data/rows", params=params)
    assert response.status_code == 400 and fragment in check_error(response)["message"]


def test_says_why_there_is_nothing_to_read(api: Api, store: Store, make_app, admin_token):
    image = succeeded_image(api, store)
    off = service_id_of(api, create_service(api, image["id"], name="off"))
    response = api.get(f"/services/{off}/data")
    assert response.status_code == 400 and "dataCollection.storageEnabled is false" in check_error(response)["message"]
    assert api.get("/services/nope/data").status_code == 404

    on = service_id_of(api, create_service(api, image["id"], name="on", dataCollection={"storageEnabled": True}))
    assert api.ok("GET", f"/services/{on}/data") == {"value": []}  # nothing collected yet


def test_blob_storage_is_read_with_the_operators_key(api: Api, store: Store, make_app, admin_token, tmp_path: Path):
    from management.collection_storage import CollectionStorage
    from runtime.datacollection.sinks import BlobSink
    from tests.runtime.test_datacollection_blob import ACCOUNT_KEY, Azurite

    azurite = Azurite(tmp_path / "azurite").start()
    try:
        blob = Api(make_app(data_collection_storage=azurite.connection_string).test_client(), admin_token)
        image = succeeded_image(blob, store)
        on = service_id_of(blob, create_service(blob, image["id"], name="on", dataCollection={"storageEnabled": True}))
        assert blob.ok("GET", f"/services/{on}/data") == {"value": []}  # no container yet
        storage = CollectionStorage(azurite.connection_string, sas_seconds=600)
        sink = BlobSink(storage.grant(on).url)  # what the service's containers write with
        sink.write(f"{PREFIX}/inputs/2026/11/27/data.csv", HEADER.encode(), b"2026-11-27T10:00:00.000Z,,r1,5.1,x\n")
        sink.write(f"{PREFIX}/inputs/2026/11/27/data.1.csv", HEADER.encode(), b"2026-11-27T11:00:00.000Z,,r2,5.2,y\n")
        sink.close()
        storage.close()

        files = blob.ok("GET", f"/services/{on}/data")["value"]
        assert [f["path"] for f in files] == [f"modeldata-{on.replace('-', '')}/{PREFIX}/inputs/2026/11/27/{name}"
                                              for name in ("data.csv", "data.1.csv")]
        rows = blob.get(f"/services/{on}/data/rows", params={"identifier": "inputs"}).get_data(as_text=True)
        assert rows == HEADER + "2026-11-27T10:00:00.000Z,,r1,5.1,x\n2026-11-27T11:00:00.000Z,,r2,5.2,y\n"
    finally:
        azurite.stop()
    down = blob.get(f"/services/{on}/data")
    assert down.status_code == 503 and "data collection storage" in check_error(down)["message"]
    assert ACCOUNT_KEY not in down.get_data(as_text=True)


def test_swarm_services_collect_only_to_blob_storage(api: Api, store: Store, make_app, admin_token):
    image = succeeded_image(api, store)
    api.ok("POST", "/computes", {"name": "cluster", "type": "swarm"})
    on_swarm = {"computeResource": {"id": "cluster", "type": "Cluster"}, "dataCollection": {"storageEnabled": True}}
    response = create_service(api, image["id"], name="swarmdc", **on_swarm)
    assert response.status_code == 400 and "MOMA_DATA_COLLECTION_STORAGE" in check_error(response)["message"]
    plain = service_id_of(api, create_service(api, image["id"], name="swarmplain",
                                              computeResource=on_swarm["computeResource"]))
    response = api.call("PUT", f"/services/{plain}", json={"dataCollection": {"storageEnabled": True}})
    assert response.status_code == 400
    blob = Api(make_app(data_collection_storage="UseDevelopmentStorage=true").test_client(), admin_token)
    assert create_service(blob, image["id"], name="swarmdc", **on_swarm).status_code == 202


def test_links_the_container_planted_are_never_followed(api: Api, collecting, tmp_path: Path):
    """The driver is user code and writes the data directory: a data file or a day
    directory that is a link to a host file must not serve that file."""
    service_id, root = collecting
    secret = tmp_path / "host-secret.csv"
    secret.write_text(HEADER + "2026-11-28T00:00:00.000Z,,stolen,1,host\n", encoding="utf-8")
    linked_file = root / "modeldata" / PREFIX / "prediction" / "2026" / "11" / "28" / "data.csv"
    linked_file.parent.mkdir(parents=True)
    linked_file.symlink_to(secret)
    elsewhere = tmp_path / "elsewhere" / "2026" / "11" / "29"
    elsewhere.mkdir(parents=True)
    (elsewhere / "data.csv").write_text(secret.read_text(encoding="utf-8"), encoding="utf-8")
    (root / "modeldata" / PREFIX / "links").mkdir()
    (root / "modeldata" / PREFIX / "links" / "2026").symlink_to(tmp_path / "elsewhere" / "2026")

    files = api.ok("GET", f"/services/{service_id}/data")["value"]
    assert ("prediction", "2026-11-28") not in [(f["identifier"], f["date"]) for f in files]
    assert "links" not in {f["identifier"] for f in files}
    for identifier in ("prediction", "links"):
        rows = api.get(f"/services/{service_id}/data/rows", params={"identifier": identifier}).get_data(as_text=True)
        assert "stolen" not in rows


def test_a_directory_swapped_for_a_link_after_listing_is_not_followed(collecting, tmp_path: Path):
    from management.collected_data import LocalSource, list_files, read_rows

    _, root = collecting
    source = LocalSource(root)
    files = list_files(source, identifier="prediction")
    assert files
    day = root / "modeldata" / PREFIX / "prediction" / "2026" / "11" / "27"
    elsewhere = tmp_path / "other-service-day"
    elsewhere.mkdir()
    (elsewhere / "data.csv").write_text("$Timestamp,$CorrelationId,$RequestId,0\n2026-11-27T10:00:00.000Z,,other,1\n",
                                        encoding="utf-8")
    (day / "data.csv").unlink()
    day.rmdir()
    day.symlink_to(elsewhere)
    assert "other" not in "".join(read_rows(source, files))
