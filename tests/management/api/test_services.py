"""The services, keys, deployments and computes routes, without an engine: what the
API accepts, stores and answers (the worker side is tested end to end elsewhere)."""

from __future__ import annotations

import pytest

from management.store import Store

from ..helpers import Api, check_error, create_service, service_id_of, succeeded_image


def test_minimal_create_is_accepted_and_stored(api: Api, store: Store):
    image = succeeded_image(api, store)
    response = create_service(api, image["id"])
    assert response.status_code == 202 and response.get_data() == b""
    location = response.headers["Operation-Location"]
    assert location.startswith(api.base + "/operations/") and "?" not in location
    operation = api.ok("GET", "/operations/" + location.rsplit("/", 1)[-1])
    assert operation["operationType"] == "Service" and operation["state"] == "NotStarted"
    service_id = operation["resourceLocation"].rsplit("/", 1)[-1]

    service = api.ok("GET", f"/services/{service_id}")
    assert service["id"] == service["ID"] == service_id
    assert service["name"] == "svc" and service["state"] == "NotStarted"
    assert service["image"]["id"] == image["id"] and service["manifest"]["id"] == image["manifest"]["id"]
    assert [m["id"] for m in service["models"]] == [image["model"]["id"]]
    assert service["computeResource"] == {"id": "local", "type": "Cluster"}
    assert service["autoScaler"]["autoscaleEnabled"] is False
    assert "scoringUri" not in service
    deployments = api.ok("GET", "/deployments", params={"serviceId": service_id})
    assert [d["status"] for d in deployments] == ["NotStarted"] and deployments[0]["imageId"] == image["id"]
    assert api.ok("GET", f"/deployments/{deployments[0]['id']}") == deployments[0]


def test_keys_are_strong_distinct_and_encrypted_at_rest(api: Api, store: Store):
    image = succeeded_image(api, store)
    service_id = service_id_of(api, create_service(api, image["id"]))
    keys = api.ok("GET", f"/services/{service_id}/keys")
    assert keys["primaryKey"] != keys["secondaryKey"]
    for key in keys.values():
        assert len(key) >= 43 and set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    row = store.services.by_id(service_id)
    assert row is not None
    assert keys["primaryKey"] not in row.primary_key and keys["secondaryKey"] not in row.secondary_key


def test_regenerating_one_key_keeps_the_other(api: Api, store: Store):
    service_id = service_id_of(api, create_service(api, succeeded_image(api, store)["id"]))
    before = api.ok("GET", f"/services/{service_id}/keys")
    after = api.ok("POST", f"/services/{service_id}/regenerateKeys", {"keyType": "Secondary"})
    assert after["primaryKey"] == before["primaryKey"] and after["secondaryKey"] != before["secondaryKey"]
    assert api.ok("GET", f"/services/{service_id}/keys") == after
    bad = api.post(f"/services/{service_id}/regenerateKeys", {"keyType": "Tertiary"})
    assert bad.status_code == 400 and "keyType" in check_error(bad)["details"][0]["message"]


@pytest.mark.parametrize(
    "changes, status, fragment",
    [
        ({"numReplicas": 2}, 400, "needs a swarm compute"),
        ({"autoScaler": {"autoscaleEnabled": True}}, 400, "autoscaling needs a swarm compute"),
        ({"containerResourceReservation": {"cpu": "fast"}}, 400, "not a Kubernetes CPU quantity"),
        ({"containerResourceReservation": {"memory": "1 GB"}}, 400, "not a Kubernetes memory quantity"),
        ({"maxConcurrentRequestsPerContainer": 0}, 400, "maxConcurrentRequestsPerContainer"),
        ({"autoScaler": {"targetUtilization": 101}}, 400, "targetUtilization"),
        ({"dataCollection": {"eventHubEnabled": True}}, 400, "not supported"),
        ({"computeResource": {"id": "nowhere", "type": "Cluster"}}, 400, "compute nowhere does not exist"),
        ({"name": "bad name"}, 400, "name"),
    ],
)
def test_bad_service_requests(api: Api, store: Store, changes, status, fragment):
    response = create_service(api, succeeded_image(api, store)["id"], **changes)
    assert response.status_code == status
    body = check_error(response)
    assert fragment in body["message"] + " ".join(d["message"] for d in body.get("details", []))


def test_images_must_exist_and_be_built(api: Api, store: Store):
    missing = create_service(api, "00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 400 and "is not in this account" in check_error(missing)["message"]
    model = api.register_model()
    manifest = api.register_manifest([model["id"]])
    api.create_image(manifest["id"])
    pending = api.ok("GET", "/images")["value"][0]["id"]
    response = create_service(api, pending)
    assert response.status_code == 400 and "NotStarted, not Succeeded" in check_error(response)["message"]


def test_name_conflict_is_409(api: Api, store: Store):
    image = succeeded_image(api, store)
    assert create_service(api, image["id"], name="same").status_code == 202
    conflict = create_service(api, image["id"], name="same")
    assert conflict.status_code == 409 and check_error(conflict)["code"] == "Conflict"


def test_update_adds_a_deployment_and_keeps_the_keys(api: Api, store: Store):
    first, second = succeeded_image(api, store, "imagea"), succeeded_image(api, store, "imageb")
    service_id = service_id_of(api, create_service(api, first["id"]))
    keys = api.ok("GET", f"/services/{service_id}/keys")
    response = api.call("PUT", f"/services/{service_id}", json={"imageId": second["id"],
                                                                 "maxConcurrentRequestsPerContainer": 3})
    assert response.status_code == 202 and response.get_data() == b""
    service = api.ok("GET", f"/services/{service_id}")
    assert service["image"]["id"] == second["id"] and service["maxConcurrentRequestsPerContainer"] == 3
    assert api.ok("GET", f"/services/{service_id}/keys") == keys
    assert [d["imageId"] for d in api.ok("GET", "/deployments", params={"serviceId": service_id})] == [
        first["id"], second["id"]]
    unknown = api.call("PUT", "/services/nope", json={"numReplicas": 1})
    assert unknown.status_code == 404


def test_delete_is_200_then_204(api: Api, store: Store):
    image, later = succeeded_image(api, store), succeeded_image(api, store, "again")
    service_id = service_id_of(api, create_service(api, image["id"]))
    deleted = api.call("DELETE", f"/services/{service_id}")
    assert deleted.status_code == 200 and "/operations/" in deleted.headers["Operation-Location"]
    assert api.call("DELETE", f"/services/{service_id}").status_code == 204
    assert api.get(f"/services/{service_id}").status_code == 404
    assert api.get(f"/services/{service_id}/keys").status_code == 404
    assert create_service(api, later["id"]).status_code == 202, "the name is free again"


def test_list_filters(api: Api, store: Store):
    first, second = succeeded_image(api, store, "imagea"), succeeded_image(api, store, "imageb")
    a = service_id_of(api, create_service(api, first["id"], name="svca"))
    b = service_id_of(api, create_service(api, second["id"], name="svcb"))

    def ids(**params: str) -> list[str]:
        return [s["id"] for s in api.ok("GET", "/services", params=params)["value"]]

    assert ids() == [a, b]
    assert ids(serviceName="svcb") == [b]
    assert ids(imageId=first["id"]) == [a]
    assert ids(manifestId=second["manifest"]["id"]) == [b]
    assert ids(manifestName="imagea-app") == [a]
    assert ids(modelId=first["model"]["id"]) == [a]
    assert ids(modelName="imageb-m") == [b]
    assert ids(computeResourceId="local") == [a, b]
    assert ids(computeResourceId="other") == []
    page = api.ok("GET", "/services", params={"count": 1})
    assert len(page["value"]) == 1 and "nextLink" in page


def test_services_are_isolated_between_accounts(api: Api, store: Store, other_account):
    scope, token = other_account
    service_id = service_id_of(api, create_service(api, succeeded_image(api, store)["id"]))
    other = api.as_account(scope, token)
    for path in (f"/services/{service_id}", f"/services/{service_id}/keys"):
        assert other.get(path).status_code == 404
    assert other.ok("GET", "/services")["value"] == []
    assert other.call("DELETE", f"/services/{service_id}").status_code == 204
    assert api.get(f"/services/{service_id}").status_code == 200


def test_computes(api: Api, store: Store):
    image = succeeded_image(api, store)
    assert [c["id"] for c in api.ok("GET", "/computes")["value"]] == ["local"]
    added = api.ok("POST", "/computes", {"name": "cluster", "type": "swarm"})
    assert added["id"] == "cluster" and added["type"] == "swarm"
    assert [c["id"] for c in api.ok("GET", "/computes")["value"]] == ["local", "cluster"]
    assert api.post("/computes", {"name": "cluster", "type": "swarm"}).status_code == 409
    assert api.post("/computes", {"name": "k8s", "type": "kubernetes"}).status_code == 400
    response = create_service(api, image["id"], name="scaled", computeResource={"id": "cluster", "type": "Cluster"})
    assert response.status_code == 202
    service = api.ok("GET", "/services", params={"serviceName": "scaled"})["value"][0]
    assert service["autoScaler"] == {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 10,
                                     "refreshPeriodInSeconds": 1, "targetUtilization": 70}

