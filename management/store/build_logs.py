"""Image build logs, in the store so that every API replica reads what any worker
wrote: appended in chunks while the build runs, read whole."""

from __future__ import annotations

import sqlalchemy as sa

from .common import now_iso
from .database import reading, writing
from .tables import build_logs


class BuildLogs:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def append(self, image_id: str, text: str) -> None:
        with writing(self.engine) as connection:
            connection.execute(sa.insert(build_logs).values(image_id=image_id, text=text, written_at=now_iso()))

    def read(self, image_id: str) -> str | None:
        """The log so far; None when nothing was written yet."""
        with reading(self.engine) as connection:
            chunks = connection.execute(sa.select(build_logs.c.text).where(build_logs.c.image_id == image_id)
                                        .order_by(build_logs.c.seq)).scalars().all()
        return "".join(chunks) if chunks else None
