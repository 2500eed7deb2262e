"""`make demo`: the pipeline on the embedded local cloud, from nothing.

Starts the local cloud and the sample site, deploys template.yaml, then sends a few sample pages
through scraper → transformer → moderator → store and prints what each step decided.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from baton import deploy
from baton.cli import EMULATOR_PARAMETERS, FUNCTIONS
from baton.errors import BatonError
from baton.localcloud import LocalCloud
from baton.site import DEFAULT_PORT, serve
from baton.targets import client, local_port

PAGES = ["/pages/garden", "/pages/recette", "/pages/rant", "/faults/missing", "/faults/to-metadata"]
STEPS = ["scraper", "transformer", "moderator", "store"]


def run_item(outputs: dict[str, str], url: str) -> tuple[str, dict[str, Any]]:
    """Chain the four deployed functions for one URL; return (last step reached, its result)."""
    lambdas = client("lambda")
    payload: dict[str, Any] = {"run_id": "demo", "url": url}
    for step in STEPS:
        response = lambdas.invoke(FunctionName=outputs[FUNCTIONS[step]],
                                  Payload=json.dumps(payload).encode())
        payload = json.loads(response["Payload"].read())
        if response.get("FunctionError"):
            return step, payload
    return "done", payload


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
        print(f"stack {result.stack}: {'deployed' if result.changed else 'no changes'}\n")
        print(f"{'URL':<48} {'outcome':<28} {'verdict':<8} {'score':>6}  change")
        for path in PAGES:
            url = f"http://127.0.0.1:{DEFAULT_PORT}{path}"
            reached, body = run_item(result.outputs, url)
            if reached == "done":
                print(f"{url:<48} {'stored':<28} {body['verdict']:<8} {body['score']:>6.2f}  "
                      f"{body['change']}")
            else:
                outcome = f"{body.get('errorType')} in {reached}"
                print(f"{url:<48} {outcome:<28}")
    finally:
        if site is not None:
            site.stop()
    print("\nThe local cloud keeps running; stop it with: .venv/bin/baton down")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BatonError as error:
        sys.exit(f"demo: error: {error}")
