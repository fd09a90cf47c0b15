"""Console pages stay fast at 100,000 models: the first page, a page deep in the list
(by the API's ``$skipToken``), the name and tag filters, and the overview's counts, each
under 300 ms (the median of three, through the test client: Flask, the API in-process,
SQLite in WAL mode)."""

from __future__ import annotations

import base64
import json
import statistics
import time

import pytest
import sqlalchemy as sa

from management.store.tables import model_tags, models

from .conftest import Pages

pytestmark = pytest.mark.slow
MODELS = 100_000
BUDGET_SECONDS = 0.3
DEFAULT = "/accounts/default/default/default"


def fill(pages: Pages) -> None:
    """100,000 models of 1,000 names, one in ten tagged, inserted in bulk (registering them
    one by one through the API is bench/bench_api.py's job, not this test's)."""
    store = pages.app.extensions["moma.store"]
    account_id = store.accounts.find("default", "default", "default").id
    rows = [{"id": f"{number:032x}", "account_id": account_id, "name": f"model-{number % 1000}",
             "version": number // 1000 + 1, "description": None, "url": "https://example.com/m.pkl",
             "mime_type": "application/octet-stream", "unpack": False,
             "tags": [f"tag-{number % 7}"] if number % 10 == 0 else [], "created_at": "2026-12-01T00:00:00.000Z"}
            for number in range(MODELS)]
    with store.engine.begin() as connection:
        connection.execute(sa.insert(models), rows)
        tagged = connection.execute(sa.select(models.c.seq, models.c.tags).where(models.c.account_id == account_id))
        connection.execute(sa.insert(model_tags), [{"model_seq": seq, "tag": tags[0], "account_id": account_id}
                                                   for seq, tags in tagged if tags])


def median_seconds(pages: Pages, path: str) -> float:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = pages.get(path)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return statistics.median(timings)


def test_pages_load_under_300_ms_at_100000_models(pages: Pages):
    fill(pages)
    pages.sign_in()
    deep = base64.urlsafe_b64encode(json.dumps({"after": 90_000}).encode()).decode().rstrip("=")
    paths = {"first page": f"{DEFAULT}/models", "page after 90,000": f"{DEFAULT}/models?page={deep}",
             "by name": f"{DEFAULT}/models?name=model-999", "by tag": f"{DEFAULT}/models?tag=tag-3",
             "by name and tag": f"{DEFAULT}/models?name=model-990&tag=tag-3", "overview": f"{DEFAULT}/"}
    assert '>100000<' in pages.get(f"{DEFAULT}/").text
    assert pages.get(paths["page after 90,000"]).text.count("<tr>") == 51  # the header and 50 models
    timings = {name: median_seconds(pages, path) for name, path in paths.items()}
    print("console at 100,000 models, median of 3:",
          ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in timings.items()))
    assert all(seconds < BUDGET_SECONDS for seconds in timings.values()), timings
