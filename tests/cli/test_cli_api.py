"""The CLI against a real `moma serve`, for everything that needs no image: what it
uploads and registers, JSON round trips, lists over several pages, and the server's
refusals with their exit codes, messages and request ids."""

from __future__ import annotations

import tarfile
import urllib.parse
from pathlib import Path

from bench.moma_server import MomaServer

from .conftest import Cli


def artifact(server: MomaServer, url: str) -> Path:
    sha256 = urllib.parse.urlsplit(url).path.strip("/").split("/")[0]
    return server.home / "artifacts" / sha256[:2] / sha256


def test_model_register_file_directory_and_url(cli: Cli, server: MomaServer, project: Path, tmp_path: Path):
    model = cli.json("model", "register", "-m", str(project / "model.pkl"), "-n", "irisfile", "-t", "a", "-t", "b",
                     "-d", "a file")
    assert (model["name"], model["version"], model["tags"], model["description"]) == ("irisfile", 1, ["a", "b"],
                                                                                     "a file")
    assert model["url"].startswith("artifact://sha256/") and model["url"].endswith("/model.pkl")
    assert model["unpack"] is False and model["mimeType"] == "application/octet-stream"
    assert artifact(server, model["url"]).read_bytes() == (project / "model.pkl").read_bytes()
    assert cli.json("model", "show", "-i", model["id"]) == model

    directory = tmp_path / "spark_model"
    (directory / "stages").mkdir(parents=True)
    (directory / "metadata").write_text("{}")
    (directory / "stages" / "0").write_text("stage")
    packed = cli.json("model", "register", "-m", str(directory), "-n", "irisdir")
    assert packed["unpack"] is True and packed["url"].endswith(".tar.gz")
    with tarfile.open(artifact(server, packed["url"])) as archive:
        assert sorted(archive.getnames()) == ["spark_model", "spark_model/metadata", "spark_model/stages",
                                              "spark_model/stages/0"]

    url = "https://example.blob.core.windows.net/models/churn.tar.gz?sv=2017&sig=abc"
    remote = cli.json("model", "register", "-m", url, "-n", "irisurl")
    assert remote["url"] == url and remote["unpack"] is True

    again = cli("model", "register", "-m", str(project / "model.pkl"), "-n", "irisfile")
    assert "registered model irisfile version 2" in again.stdout


def test_model_list_follows_every_page_and_filters(cli: Cli, server: MomaServer):
    client = server.client()
    for number in range(105):
        client.call("POST", "/models", json={"name": "paged", "url": f"https://example.com/m{number}.pkl",
                                             "mimeType": "application/octet-stream", "tags": ["odd"] * (number % 2)})
    listed = cli.json("model", "list", "-n", "paged")
    assert [m["version"] for m in listed] == list(range(1, 106))
    assert len(cli.json("model", "list", "-n", "paged", "-t", "odd")) == 52
    table = cli("model", "list", "-n", "paged").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "VERSION", "TAGS", "CREATED"] and len(table) == 106


def test_manifest_create_uploads_every_input(cli: Cli, server: MomaServer, project: Path, tmp_path: Path):
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "util.py").write_text("X = 1\n")
    (project / "conda.yml").write_text("dependencies:\n  - python=3.11\n")
    manifest = cli.json("manifest", "create", "-n", "irisapp", "-f", str(project / "score_df.py"), "-r", "python",
                        "-s", str(project / "iris-schema.json"), "-d", str(helpers / "util.py"), "-d", str(helpers),
                        "-p", str(project / "requirements.txt"), "-c", str(project / "conda.yml"),
                        "-m", str(project / "model.pkl"), "--manifest-description", "all inputs")
    assets = {asset["id"]: asset for asset in manifest["assets"]}
    assert manifest["driverProgram"] == "driver" and assets["driver"]["url"].endswith("/score_df.py")
    assert assets["driver"]["mimeType"] == "application/x-python"
    assert assets["schema"]["url"].endswith("/service_schema.json"), "the runtime finds the schema by this name"
    assert artifact(server, assets["schema"]["url"]).read_bytes() == (project / "iris-schema.json").read_bytes()
    assert assets["util.py"]["url"].endswith("/util.py") and not assets["util.py"].get("unpack")
    assert assets["helpers"]["unpack"] is True and assets["helpers"]["url"].endswith(".tar.gz")
    runtime = manifest["targetRuntime"]
    assert runtime["runtimeType"] == "Python"
    assert runtime["properties"]["pipRequirements"].endswith("/requirements.txt")
    assert runtime["properties"]["condaEnvFile"].endswith("/conda.yml")
    model = cli.json("model", "show", "-i", manifest["modelIds"][0])
    assert model["name"] == "model" and model["url"].endswith("/model.pkl"), "-m registers the file first"
    assert cli.json("manifest", "show", "-i", manifest["id"]) == manifest
    assert [m["id"] for m in cli.json("manifest", "list", "--model-id", model["id"])] == [manifest["id"]]

    spark = cli.json("manifest", "create", "-n", "sparkapp", "-f", str(project / "score.py"), "-r", "spark-py",
                     "-i", model["id"])
    assert spark["targetRuntime"] == {"runtimeType": "SparkPython", "properties": {}}


def test_manifest_refusals(cli: Cli, project: Path):
    unknown = cli("manifest", "create", "-n", "bad", "-f", str(project / "score.py"), "-r", "python",
                  "-i", "0123456789abcdef0123456789abcdef", ok=False)
    assert unknown.returncode == 1
    assert "error: model 0123456789abcdef0123456789abcdef is not registered in this account" in unknown.stderr
    assert "(request id " in unknown.stderr

    malformed = cli("manifest", "create", "-n", "bad", "-f", str(project / "score.py"), "-r", "python",
                    "-i", "not-a-model-id", ok=False)
    assert malformed.returncode == 1 and "modelIds[0]" in malformed.stderr and "(request id " in malformed.stderr

    no_model = cli("manifest", "create", "-n", "bad", "-f", str(project / "score.py"), "-r", "python", ok=False)
    assert no_model.returncode == 2 and "at least one model is required" in no_model.stderr

    missing = cli("manifest", "create", "-n", "bad", "-f", str(project / "nope.py"), "-r", "python", "-i", "x",
                  ok=False)
    assert missing.returncode == 2 and "'-f' / '--driver-file'" in missing.stderr and "does not exist" in missing.stderr

    both = cli("image", "create", "-n", "bad", "--manifest-id", "m", "-f", str(project / "score.py"), ok=False)
    assert both.returncode == 2 and "not both" in both.stderr


def test_unknown_ids_exit_1_with_the_server_message_and_request_id(cli: Cli):
    for args, message in ((("service", "show", "realtime", "-i", "nope"), "service nope not found"),
                          (("service", "delete", "-i", "nope"), "service nope not found (nothing deleted)"),
                          (("service", "keys", "-i", "nope"), "service nope not found"),
                          (("service", "run", "-i", "nope", "-d", "{}"), "service nope not found"),
                          (("service", "update", "-i", "nope", "--cpu", "1"), "service nope not found"),
                          (("image", "show", "-i", "nope"), "image nope not found"),
                          (("operation", "show", "-i", "nope"), "operation nope not found"),
                          (("image", "create", "-n", "img", "--manifest-id", "nope"),
                           "manifest nope is not registered in this account")):
        result = cli(*args, ok=False)
        assert result.returncode == 1, result
        assert result.stderr.startswith(f"error: {message}") and "(request id " in result.stderr, result


def test_wrong_token_exits_1_not_valid(cli: Cli, server: MomaServer, tmp_path: Path):
    for moma in (Cli(tmp_path / "other", server.url, {"MOMA_TOKEN": "wrong"}),
                 Cli(tmp_path / "empty", server.url)):
        result = moma("model", "list", ok=False)
        assert result.returncode == 1 and "(request id " in result.stderr
    assert "the bearer token is not valid" in Cli(tmp_path, server.url)("--token", "x", "model", "list",
                                                                       ok=False).stderr
    assert Cli(tmp_path / "env", server.url, {"MOMA_TOKEN": server.token})("model", "list").returncode == 0


def test_computes(cli: Cli):
    added = cli.json("compute", "add", "-n", "cluster", "--type", "swarm", "--docker-host", "tcp://127.0.0.1:2376")
    assert added["id"] == "cluster" and added["type"] == "swarm" and added["dockerHost"] == "tcp://127.0.0.1:2376"
    assert [c["id"] for c in cli.json("compute", "list")] == ["local", "cluster"]
    assert "cluster  swarm  tcp://127.0.0.1:2376" in cli("compute", "list").stdout
    again = cli("compute", "add", "-n", "cluster", ok=False)
    assert again.returncode == 1 and "a compute named cluster exists" in again.stderr


def test_a_compute_on_a_remote_engine_needs_tls(cli: Cli, tmp_path: Path):
    refused = cli("compute", "add", "-n", "remote", "--docker-host", "tcp://10.0.0.5:2376", ok=False)
    assert refused.returncode == 1 and "10.0.0.5 is not a loopback address: it needs tls" in refused.stderr
    tls = tmp_path / "tls"
    tls.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tls / name).write_text("-----BEGIN X-----\nAA==\n-----END X-----\n")

    added = cli.json(
        "compute", "add", "-n", "remote", "--docker-host", "tcp://10.0.0.5:2376", "--tls-ca-cert", str(tls / "ca.pem"),
        "--tls-cert", str(tls / "cert.pem"), "--tls-key", str(tls / "key.pem"))

    assert added["tls"] == {"verify": True, "caCertPath": str(tls / "ca.pem"), "clientCertPath": str(tls / "cert.pem"),
                            "clientKeyPath": str(tls / "key.pem")}
    row = next(line.split() for line in cli("compute", "list").stdout.splitlines() if line.startswith("remote "))
    assert row[:4] == ["remote", "swarm", "tcp://10.0.0.5:2376", "True"]


def test_service_refusals_from_the_server(cli: Cli):
    refused = cli("service", "create", "realtime", "-n", "svc", "--image-id", "nope", ok=False)
    assert refused.returncode == 1 and "image nope is not in this account" in refused.stderr
    no_compute = cli("service", "create", "-n", "svc", "--image-id", "nope", "--compute", "elsewhere", ok=False)
    assert no_compute.returncode == 1 and "compute elsewhere does not exist" in no_compute.stderr


def test_accounts_and_tokens(cli: Cli, server: MomaServer, tmp_path: Path):
    scope = ("--subscription", "sub-cli", "--resource-group", "rg-cli", "--account", "team-cli")
    created = cli.json("account", "create", "-n", "team-cli", "--subscription", "sub-cli", "--resource-group", "rg-cli")
    assert created["path"] == "/api/subscriptions/sub-cli/resourceGroups/rg-cli/accounts/team-cli"

    account_token = cli.json(*scope, "token", "create", "-n", "ci")
    admin_token = cli.json("token", "create", "-n", "ops", "--admin")

    assert (account_token["admin"], admin_token["admin"]) == (False, True)
    as_team = Cli(tmp_path / "team", server.url, {"MOMA_TOKEN": account_token["token"]})
    assert as_team.json(*scope, "model", "list") == []
    refused = as_team("token", "list", ok=False)
    assert refused.returncode == 1 and "administration needs an admin token" in refused.stderr
    as_ops = Cli(tmp_path / "ops", server.url, {"MOMA_TOKEN": admin_token["token"]})
    assert {token["name"] for token in as_ops.json("token", "list")} >= {"ci", "ops"}
