"""What `baton history` shows of the UI's reading: the text timeline and the run's cost."""

from __future__ import annotations

from typing import Any

from baton.ui.charts import text_timeline
from baton.ui.reader import Reader


def timeline(target: str, stack: str, run_id: str, width: int = 60) -> str:
    """`baton history RUN_ID --timeline`: the run's Gantt as text."""
    return text_timeline(Reader(target, stack).run(run_id), width)


def cost_usd(target: str, stack: str, run_id: str) -> dict[str, Any]:
    """`cost_usd` of `baton history --json`: the run's estimated AWS cost, total and per service."""
    reader = Reader(target, stack)
    return reader.cost(reader.run(run_id)).as_json()
