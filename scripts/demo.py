"""`make demo`: start the embedded local cloud, deploy a function to it and invoke it.

This grows with the pipeline; today it shows the foundation: a real Lambda running on the local
cloud, with its result and its logs.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import zipfile

from baton.errors import BatonError
from baton.localcloud import LocalCloud
from baton.targets import client, local_port

HANDLER = '''
import logging, platform

def lambda_handler(event, context):
    logging.getLogger().setLevel(logging.INFO)
    logging.info("hello from %s", context.function_name)
    return {"greeting": f"hello, {event.get('name', 'world')}", "python": platform.python_version()}
'''


def main() -> int:
    instance, started = LocalCloud().up(port=local_port())
    print(f"local cloud: {instance.endpoint} ({'started' if started else 'already running'})")
    lambdas = client("lambda")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", HANDLER)
    if "baton-hello" in {f["FunctionName"] for f in lambdas.list_functions()["Functions"]}:
        lambdas.delete_function(FunctionName="baton-hello")
    lambdas.create_function(
        FunctionName="baton-hello", Runtime="python3.11", Handler="app.lambda_handler",
        Role="arn:aws:iam::000000000000:role/baton-demo", Code={"ZipFile": archive.getvalue()},
    )
    response = lambdas.invoke(FunctionName="baton-hello", Payload=b'{"name": "baton"}',
                              LogType="Tail")
    print("result:", json.loads(response["Payload"].read()))
    print("log:   ", base64.b64decode(response["LogResult"]).decode().strip())
    print("The local cloud keeps running; stop it with: .venv/bin/baton down")
    return 1 if response.get("FunctionError") else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BatonError as error:
        sys.exit(f"demo: error: {error}")
