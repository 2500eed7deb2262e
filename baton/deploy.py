"""Deploy template.yaml to a target: build, upload artifacts, run a CloudFormation change set.

The same path for every target (local, localstack, aws); only the endpoint differs. The template
keeps local paths (``CodeUri: functions/scraper/``); packaging replaces them with S3 locations of
content-hashed artifacts, like ``sam package``, so an unchanged build yields an unchanged template
and CloudFormation itself reports "no changes".
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from baton import asl, build
from baton.errors import BatonError
from baton.targets import client

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DEFAULT_STACK = "baton"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
POLL_S = 0.3

# The resource properties that name a local path, and how each becomes an S3 location.
PACKAGED_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """Parse a CloudFormation YAML template, intrinsic tags included (``!Ref`` → ``{"Ref": …}``)."""
    from cfnlint.decode import cfn_yaml

    try:
        return json.loads(json.dumps(cfn_yaml.loads(path.read_text(), str(path))))
    except FileNotFoundError as missing:
        raise BatonError(f"no template at {path}") from missing
    except OSError as error:  # a directory, no permission
        raise BatonError(f"cannot read the template {path}: {error.strerror}") from error
    except Exception as error:  # cfn-lint raises several YAML error types; all mean "fix the file"
        raise BatonError(f"{path} is not a valid template: {error}") from error


def lint_template(path: Path = TEMPLATE, build_dir: Path | None = None) -> list[str]:
    """cfn-lint's findings as readable lines (empty when clean).

    A clean result is remembered by the template's hash in ``build_dir``: linting takes ~2 s,
    most of a no-change redeploy.
    """
    from cfnlint.api import ManualArgs, lint_file

    if not path.is_file():  # checked before it is hashed below
        raise BatonError(f"no template at {path}")
    clean_mark = None
    if build_dir is not None:
        clean_mark = build_dir / "lint-clean" / hashlib.sha256(path.read_bytes()).hexdigest()
        if clean_mark.exists():
            return []
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1"]))
    problems = [f"{path.name}:{m.linenumber}: {m.rule.id} {m.message}" for m in matches]
    if not problems and clean_mark is not None:
        clean_mark.parent.mkdir(parents=True, exist_ok=True)
        clean_mark.touch()
    return problems


@dataclass
class Uploader:
    """Puts artifacts in the target's deployment bucket once per content hash."""

    target: str
    say: Callable[[str], None]
    _bucket: str | None = None

    @property
    def bucket(self) -> str:
        if self._bucket is None:
            account = client("sts", self.target).get_caller_identity()["Account"]
            name = f"baton-artifacts-{account}-{client('s3', self.target).meta.region_name}"
            s3 = client("s3", self.target)
            try:
                s3.head_bucket(Bucket=name)
            except ClientError:
                self.say(f"creating the deployment bucket {name}")
                s3.create_bucket(Bucket=name)
            self._bucket = name
        return self._bucket

    def upload(self, artifact: Path) -> dict[str, str]:
        """Upload ``artifact`` unless an object of the same content is there; return its location."""
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()[:20]
        key = f"{artifact.stem}-{digest}{artifact.suffix}"
        s3 = client("s3", self.target)
        try:
            s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            self.say(f"uploading {artifact.name} ({artifact.stat().st_size / 1e6:.1f} MB)")
            s3.upload_file(str(artifact), self.bucket, key)
        return {"Bucket": self.bucket, "Key": key}


def artifact_for(kind: str, logical_id: str, source: Path, build_dir: Path, for_aws: bool) -> Path:
    """Build the artifact a local path stands for: a function zip, a layer zip or an ASL file."""
    if kind == "AWS::Serverless::StateMachine":
        return source
    if kind == "AWS::Serverless::LayerVersion":
        return build.build_layer(source, build_dir, for_aws=for_aws)
    return build.build_function(source, build_dir / "functions" / f"{logical_id}.zip")


def build_all(template: dict[str, Any], build_dir: Path, for_aws: bool
              ) -> dict[tuple[str, str], Path]:
    """Build every artifact the template's local paths name: {(logical id, property): file}."""
    built = {}
    for logical_id, resource in template.get("Resources", {}).items():
        prop = PACKAGED_PROPERTIES.get(resource.get("Type", ""), "")
        location = resource.get("Properties", {}).get(prop)
        if not isinstance(location, str) or location.startswith("s3://"):
            continue
        source = (ROOT / location).resolve()
        if not source.exists():
            raise BatonError(f"{logical_id}.{prop} points to {location}, which does not exist")
        if resource["Type"] == "AWS::Serverless::StateMachine":
            asl.sync(source)  # each step Task's Retry/Catch, from the step registry
        built[logical_id, prop] = artifact_for(resource["Type"], logical_id, source, build_dir,
                                               for_aws)
    return built


def package(template: dict[str, Any], uploader: Uploader, build_dir: Path,
            for_aws: bool) -> dict[str, Any]:
    """A copy of ``template`` whose local paths are replaced by uploaded S3 locations."""
    packaged = copy.deepcopy(template)
    for (logical_id, prop), artifact in build_all(template, build_dir, for_aws).items():
        packaged["Resources"][logical_id]["Properties"][prop] = uploader.upload(artifact)
    return packaged


def stack_status(cfn: Any, stack: str) -> dict[str, Any] | None:
    try:
        return dict(cfn.describe_stacks(StackName=stack)["Stacks"][0])
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def _wait_for_change_set(cfn: Any, change_set_id: str) -> dict[str, Any]:
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            return dict(described)
        time.sleep(POLL_S)


def _follow_stack(cfn: Any, stack: str, since: float, say: Callable[[str], None]) -> dict[str, Any]:
    """Print each new stack event until the stack settles; return the final description."""
    seen: set[str] = set()
    while True:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        for event in reversed(events):
            if event["EventId"] in seen or event["Timestamp"].timestamp() < since - 1:
                continue
            seen.add(event["EventId"])
            reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            say(f"  {event['LogicalResourceId']:<32} {event['ResourceStatus']}{reason}")
        status = stack_status(cfn, stack)
        if status is None or not status["StackStatus"].endswith("IN_PROGRESS"):
            return status or {"StackStatus": "DELETE_COMPLETE"}
        time.sleep(POLL_S)


def failure_reasons(cfn: Any, stack: str, since: float) -> list[str]:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    return [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', e['ResourceStatus'])}"
            for e in events
            if e["ResourceStatus"].endswith("FAILED") and e["Timestamp"].timestamp() >= since - 1]


@dataclass
class DeployResult:
    stack: str
    changed: bool
    outputs: dict[str, str]


def deploy(target: str, stack: str = DEFAULT_STACK, parameters: dict[str, str] | None = None,
           template_path: Path = TEMPLATE, say: Callable[[str], None] = print,
           build_dir: Path | None = None) -> DeployResult:
    """Build, upload and deploy ``template_path`` as ``stack`` on ``target``."""
    build_dir = build_dir or ROOT / "build" / target
    problems = lint_template(template_path, build_dir)
    if problems:
        raise BatonError("cfn-lint found problems in the template:\n  " + "\n  ".join(problems))
    template = load_template(template_path)
    unknown = set(parameters or {}) - set(template.get("Parameters", {}))
    if unknown:
        raise BatonError(f"unknown parameter(s) {', '.join(sorted(unknown))}; the template "
                         f"declares: {', '.join(template.get('Parameters', {})) or 'none'}")
    packaged = package(template, Uploader(target, say), build_dir, for_aws=target == "aws")
    cfn = client("cloudformation", target)
    existing = stack_status(cfn, stack)
    if existing and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        say(f"stack {stack} is in ROLLBACK_COMPLETE after a failed create; deleting it first")
        cfn.delete_stack(StackName=stack)
        _follow_stack(cfn, stack, time.time(), say)
        existing = None
    change_set = cfn.create_change_set(
        StackName=stack, ChangeSetName=f"baton-{int(time.time() * 1000)}",
        ChangeSetType="UPDATE" if existing else "CREATE",
        TemplateBody=json.dumps(packaged), Capabilities=CAPABILITIES,
        Parameters=parameter_list(parameters or {}, existing),
    )
    described = _wait_for_change_set(cfn, change_set["Id"])
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            cfn.delete_change_set(ChangeSetName=change_set["Id"])
            return DeployResult(stack, False, outputs_of(existing or {}))
        raise BatonError(f"CloudFormation rejected the change set: {reason}")
    say(f"deploying stack {stack}: {len(described.get('Changes', []))} change(s)")
    for change in described.get("Changes", []):
        resource = change["ResourceChange"]
        details = sorted({d.get("Target", {}).get("Name") or "" for d in resource.get("Details", [])})
        say(f"  {resource.get('Action', '?'):<8} {resource['LogicalResourceId']}"
            + (f" ({', '.join(filter(None, details))})" if any(details) else ""))
    started = time.time()
    cfn.execute_change_set(ChangeSetName=change_set["Id"])
    final = _follow_stack(cfn, stack, started, say)
    if not final["StackStatus"].endswith("_COMPLETE") or "ROLLBACK" in final["StackStatus"]:
        reasons = failure_reasons(cfn, stack, started) or [final.get("StackStatusReason", "")]
        raise BatonError(f"deploy failed, stack {stack} is {final['StackStatus']}:\n  "
                         + "\n  ".join(reasons))
    return DeployResult(stack, True, outputs_of(final))


def parameter_list(given: dict[str, str], existing: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Given values, and on update the previous value of every parameter not given again."""
    kept = [p["ParameterKey"] for p in (existing or {}).get("Parameters", [])
            if p["ParameterKey"] not in given]
    return ([{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()]
            + [{"ParameterKey": k, "UsePreviousValue": True} for k in kept])


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_outputs(target: str, stack: str = DEFAULT_STACK) -> dict[str, str]:
    """The deployed stack's outputs; a clear error if it is not deployed."""
    status = stack_status(client("cloudformation", target), stack)
    if status is None:
        raise BatonError(f"stack {stack} is not deployed on {target}; run: baton deploy "
                         f"--target {target}")
    return outputs_of(status)


def destroy(target: str, stack: str = DEFAULT_STACK, say: Callable[[str], None] = print) -> bool:
    """Delete the stack; False when there was none."""
    cfn = client("cloudformation", target)
    if stack_status(cfn, stack) is None:
        return False
    started = time.time()
    cfn.delete_stack(StackName=stack)
    final = _follow_stack(cfn, stack, started, say)
    if final["StackStatus"] != "DELETE_COMPLETE":
        raise BatonError(f"could not delete stack {stack} ({final['StackStatus']}):\n  "
                         + "\n  ".join(failure_reasons(cfn, stack, started)))
    return True
