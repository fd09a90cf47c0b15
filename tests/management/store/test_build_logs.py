"""Build logs in the store (``store/build_logs.py``): chunks read back whole, in the
order written, one image's apart from another's."""

from __future__ import annotations

from typing import Any

from management.store import Store

from ..helpers import Api, image_id_of


def test_chunks_read_back_in_order_per_image(api: Api, manifest: dict[str, Any], store: Store) -> None:
    first, second = (image_id_of(api, api.create_image(manifest["id"])) for _ in range(2))
    assert store.build_logs.read(first) is None

    for chunk in ("Step 1/2\n", "Step 2/2 ü\n", "done\n"):
        store.build_logs.append(first, chunk)
    store.build_logs.append(second, "other\n")

    assert store.build_logs.read(first) == "Step 1/2\nStep 2/2 ü\ndone\n"
    assert store.build_logs.read(second) == "other\n"
