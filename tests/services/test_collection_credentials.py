"""What a data-collecting service gets from the operator's storage account, against
Azurite: a container of its own and a SAS on it that can create and append blobs and
nothing else — not read its own data back, not list, not delete, not reach another
service's container — and never the account key. The runtime's blob sink works with
that SAS alone; the operator reads the rows with the account key."""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from management.collection_storage import CollectionStorage, StorageError, container_name
from runtime.datacollection.sinks import BlobSink, SinkError
from tests.runtime.test_datacollection_blob import ACCOUNT_KEY, race_for_one_header

pytestmark = pytest.mark.slow

SERVICE_A, SERVICE_B = "0b7e5a44-1f0c-4c8e-9a51-6d2f0e7c9b11", "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
PATH = "sub/rg/acct/svc/m1-iris-1/inputs/2026/12/02/data.csv"


@pytest.fixture
def storage(azurite):
    storage = CollectionStorage(azurite.connection_string, sas_seconds=3600)
    yield storage
    storage.close()


def denied(call) -> bool:  # type: ignore[no-untyped-def]
    from azure.core.exceptions import HttpResponseError

    try:
        call()
    except HttpResponseError as exc:
        return exc.status_code == 403
    return False


def test_container_names_are_valid_and_per_service():
    name = container_name(SERVICE_A)
    assert name == "modeldata-0b7e5a441f0c4c8e9a516d2f0e7c9b11" and len(name) <= 63
    assert container_name(SERVICE_B) != name and container_name("A_b--c" * 20).islower()
    assert len(container_name("x" * 100)) == 63


def test_the_grant_is_a_sas_on_the_services_own_container(storage):
    grant = storage.grant(SERVICE_A)
    url = urllib.parse.urlsplit(grant.url)
    query = urllib.parse.parse_qs(url.query)
    assert url.path.endswith(f"/{container_name(SERVICE_A)}")
    assert query["sr"] == ["c"] and sorted(query["sp"][0]) == sorted("acw")
    assert ACCOUNT_KEY not in grant.url and "AccountKey" not in grant.url
    assert timedelta(minutes=59) < grant.expires - datetime.now(timezone.utc) <= timedelta(hours=1)


def test_the_sink_appends_with_the_sas_alone_and_the_operator_reads(storage):
    url = storage.grant(SERVICE_A).url
    race_for_one_header(url, PATH, rows=5)
    later = BlobSink(url)  # a new worker: the blob and its header are there already
    later.write(PATH, b"HEADER\n", b"late\n")
    later.close()

    assert [name for name, _ in storage.blobs(SERVICE_A)] == [PATH]
    lines = b"".join(storage.chunks(SERVICE_A, PATH)).decode().splitlines()
    assert lines[0] == "HEADER" and lines.count("HEADER") == 1 and len(lines) == 22 and lines[-1] == "late"
    assert list(storage.blobs(SERVICE_B)) == []


def test_the_sas_reaches_nothing_else(storage):
    from azure.storage.blob import ContainerClient

    own = storage.grant(SERVICE_A).url
    storage.grant(SERVICE_B)
    sink = BlobSink(storage.grant(SERVICE_B).url)
    sink.write(PATH, b"H\n", b"b's row\n")
    sink.close()
    BlobSink(own).write(PATH, b"H\n", b"a's row\n")

    mine = ContainerClient.from_container_url(own)
    base, sas = own.split("?")
    theirs = ContainerClient.from_container_url(f"{base.rsplit('/', 1)[0]}/{container_name(SERVICE_B)}?{sas}")
    assert denied(lambda: mine.get_blob_client(PATH).download_blob().readall()), "read its own data"
    assert denied(lambda: list(mine.list_blobs())), "list its own container"
    assert denied(lambda: mine.get_blob_client(PATH).delete_blob()), "delete its own data"
    assert denied(lambda: theirs.get_blob_client(PATH).download_blob().readall()), "read another's"
    assert denied(lambda: list(theirs.list_blobs())), "list another's"
    assert denied(lambda: theirs.get_blob_client("planted.csv").upload_blob(b"x")), "write another's"
    assert denied(lambda: theirs.get_blob_client(PATH).append_block(b"x\n")), "append to another's"
    assert b"".join(storage.chunks(SERVICE_B, PATH)) == b"H\nb's row\n"


def test_an_expired_sas_writes_nothing(storage):
    expired = storage.grant(SERVICE_A, now=datetime.now(timezone.utc) - timedelta(hours=2)).url
    sink = BlobSink(expired)
    with pytest.raises(SinkError):
        sink.write("expired/data.csv", b"H\n", b"row\n")
    sink.close()
    assert "expired/data.csv" not in {name for name, _ in storage.blobs(SERVICE_A)}


def test_a_connection_string_without_the_account_key_is_refused(azurite):
    endpoint = azurite.connection_string.split("BlobEndpoint=")[1]
    with pytest.raises(StorageError, match="account key"):
        CollectionStorage(f"BlobEndpoint={endpoint}SharedAccessSignature=sv=2020-01-01&sig=x", sas_seconds=60)
