"""`make demo`: the pipeline on the embedded local cloud, from nothing.

Starts the local cloud and the sample site, deploys template.yaml, then runs the sample watchlist
through the pipeline with each engine and prints their summaries.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Powertools logs of the shared pipeline code are for CloudWatch, not for the demo's output.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from baton import deploy, run
from baton.commands.common import EMULATOR_PARAMETERS
from baton.errors import BatonError
from baton.localcloud import LocalCloud
from baton.site import DEFAULT_PORT, serve
from baton.targets import local_port
from pipeline.steps import ENGINES

WATCHLIST = Path(__file__).resolve().parent.parent / "examples" / "sample-watchlist.txt"


def main() -> int:
    instance, started = LocalCloud().up(port=local_port())
    print(f"local cloud: {instance.endpoint} ({'started' if started else 'already running'})")
    try:
        site = serve(DEFAULT_PORT).start()
        print(f"sample site: {site.base_url}")
    except OSError:
        site = None
        print(f"sample site: port {DEFAULT_PORT} is in use; assuming `baton site` serves it")
    try:
        result = deploy.deploy("local", parameters=EMULATOR_PARAMETERS)
        print(f"stack {result.stack}: {'deployed' if result.changed else 'no changes'}")
        lines = run.read_watchlist(WATCHLIST)
        for engine in ENGINES:
            print(f"\n== {engine}: {len(lines)} pages of {WATCHLIST.name}")
            summary = run.run(engine, "local", result.stack, run.run_request([], 8, lines),
                              show=run.show_progress)
            assert not isinstance(summary, str)
            print("\n" + run.summary_table(summary))
    finally:
        if site is not None:
            site.stop()
    print("\nThe local cloud keeps running (.venv/bin/baton down stops it). Try:\n"
          "  .venv/bin/baton site &   # then\n"
          "  .venv/bin/baton run --engine stepfunctions --watchlist examples/sample-watchlist.txt")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BatonError as error:
        sys.exit(f"demo: error: {error}")
