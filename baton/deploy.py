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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from baton import asl, build
from baton.errors import BatonError
from baton.targets import client

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DEFAULT_STACK = "baton"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
POLL_S = 0.3
NO_UPDATES = "No updates are to be performed"
DELETE_SETTLE_S = 15.0

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


PUBLIC_ACCESS_BLOCKED = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                         "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
OWNER_MISMATCH = ("403", "AccessDenied", "Forbidden")
NOT_FOUND = ("404", "NoSuchBucket", "NotFound")


def tls_only_policy(bucket: str) -> str:
    """A bucket policy that refuses every request not made over TLS."""
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]})


def _not_ours(name: str, account: str) -> BatonError:
    return BatonError(
        f"the deployment bucket {name} exists but is not owned by account {account} (or denies "
        f"it access); baton will not upload artifacts to a bucket another account controls. "
        f"Delete it if it is yours under another account, or deploy from account {account} "
        f"after finding who owns it")


def ensure_deployment_bucket(target: str, say: Callable[[str], None]) -> tuple[str, str]:
    """The deployment bucket's name and owning account; created private and TLS-only if missing.

    The name is predictable (account and region), so every call names the expected owner: a bucket
    someone else created under that name is refused, never written to.
    """
    with explained(f"finding the account of the {target} credentials"):
        account = str(client("sts", target).get_caller_identity()["Account"])
    s3 = client("s3", target)
    region = s3.meta.region_name
    name = f"baton-artifacts-{account}-{region}"
    try:
        s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
        return name, account
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code in OWNER_MISMATCH:
            raise _not_ours(name, account) from error
        if code not in NOT_FOUND:
            raise BatonError(f"checking the deployment bucket {name}: {code}: {error}") from error
    say(f"creating the deployment bucket {name} (private, TLS only)")
    location = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=name, **location)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code == "BucketAlreadyExists":  # taken between the check and now, by someone else
            raise _not_ours(name, account) from error
        if code != "BucketAlreadyOwnedByYou":
            raise BatonError(f"could not create the deployment bucket {name} in {region}: "
                             f"{code}: {error}") from error
    with explained(f"securing the deployment bucket {name}"):
        s3.put_public_access_block(Bucket=name, ExpectedBucketOwner=account,
                                   PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCKED)
        s3.put_bucket_policy(Bucket=name, ExpectedBucketOwner=account, Policy=tls_only_policy(name))
    return name, account


@dataclass
class Uploader:
    """Puts artifacts in the target's deployment bucket once per content hash."""

    target: str
    say: Callable[[str], None]
    _bucket: tuple[str, str] | None = None

    @property
    def bucket(self) -> str:
        return self._owned_bucket[0]

    @property
    def _owned_bucket(self) -> tuple[str, str]:
        if self._bucket is None:
            self._bucket = ensure_deployment_bucket(self.target, self.say)
        return self._bucket

    def upload(self, artifact: Path) -> dict[str, str]:
        """Upload ``artifact`` unless an object of the same content is there; return its location."""
        bucket, owner = self._owned_bucket
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()[:20]
        key = f"{artifact.stem}-{digest}{artifact.suffix}"
        s3 = client("s3", self.target)
        try:
            s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=owner)
        except ClientError as error:
            # S3 answers 403 for a missing key to a caller without s3:ListBucket: upload then,
            # the upload names the owner too.
            code = str(error.response.get("Error", {}).get("Code"))
            if code not in NOT_FOUND + OWNER_MISMATCH:
                raise BatonError(f"checking {key} in {bucket}: {code}: {error}") from error
            self.say(f"uploading {artifact.name} ({artifact.stat().st_size / 1e6:.1f} MB)")
            try:
                s3.upload_file(str(artifact), bucket, key, ExtraArgs={"ExpectedBucketOwner": owner})
            except (ClientError, S3UploadFailedError) as failed:
                raise BatonError(f"uploading {artifact.name} to {bucket} failed: {failed}") from failed
        return {"Bucket": bucket, "Key": key}


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
    """The stack's description (by name or id), or None when there is no such stack."""
    try:
        return dict(cfn.describe_stacks(StackName=stack)["Stacks"][0])
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


@contextmanager
def explained(what: str) -> Iterator[None]:
    """Turn an AWS API error into a BatonError that says what baton was doing."""
    try:
        yield
    except ClientError as error:
        details = error.response.get("Error", {})
        raise BatonError(f"{what}: {details.get('Code', 'error')}: "
                         f"{details.get('Message', error)}") from error


def _wait_for_change_set(cfn: Any, change_set_id: str) -> dict[str, Any]:
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            changes = list(described.get("Changes", []))
            while described.get("NextToken"):
                described = cfn.describe_change_set(ChangeSetName=change_set_id,
                                                    NextToken=described["NextToken"])
                changes += described.get("Changes", [])
            return dict(described) | {"Changes": changes}
        time.sleep(POLL_S)


def _follow_stack(cfn: Any, stack_id: str, since: float, say: Callable[[str], None]
                  ) -> dict[str, Any]:
    """Print each new stack event until the stack settles; return the final description.

    Followed by stack id: after a delete, AWS answers for the id (DELETE_COMPLETE) but refuses the
    name ("does not exist"); an emulator that forgets the id counts as deleted too.
    """
    seen: set[str] = set()
    while True:
        for event in _events_since(cfn, stack_id, since):
            if event["EventId"] in seen:
                continue
            seen.add(event["EventId"])
            reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            say(f"  {event['LogicalResourceId']:<32} {event['ResourceStatus']}{reason}")
        status = stack_status(cfn, stack_id)
        if status is None or not status["StackStatus"].endswith("IN_PROGRESS"):
            return status or {"StackId": stack_id, "StackStatus": "DELETE_COMPLETE"}
        time.sleep(POLL_S)


def _events_since(cfn: Any, stack_id: str, since: float) -> list[dict[str, Any]]:
    """The stack's events from ``since`` on, oldest first (none once an emulator forgot it)."""
    try:
        events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
    except ClientError as error:
        if "does not exist" in str(error):
            return []
        raise
    return [e for e in reversed(events) if e["Timestamp"].timestamp() >= since - 1]


def failure_reasons(cfn: Any, stack: str, since: float) -> list[str]:
    """Why resources failed since ``since``: "LogicalId: reason" for each failed event."""
    return [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', e['ResourceStatus'])}"
            for e in _events_since(cfn, stack, since) if e["ResourceStatus"].endswith("FAILED")]


def _latest_failures(cfn: Any, stack: dict[str, Any]) -> list[str]:
    """The failure reasons of the stack's last operation (for a stack found broken)."""
    reasons = failure_reasons(cfn, stack["StackId"], 0)[-5:]
    return reasons or [stack.get("StackStatusReason") or "no reason recorded"]


def _way_out(status: str, stack: str, target: str) -> str | None:
    """What the user must do about a stack in ``status`` before deploying; None when nothing."""
    destroy = f"baton destroy --target {target} --stack-name {stack}"
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        return "another operation is still running on it; wait until it ends, then deploy again"
    if status in ("DELETE_FAILED", "ROLLBACK_FAILED"):
        return (f"some of its resources could not be deleted. Run `{destroy}` to retry the "
                "delete; if a resource still cannot be deleted, remove it by hand (the reasons "
                "above name it), then destroy and deploy again")
    if status == "UPDATE_ROLLBACK_FAILED":
        return ("an update could not be rolled back. Fix the resources named above, then run "
                f"`aws cloudformation continue-update-rollback --stack-name {stack}` (or "
                f"`{destroy}`), and deploy again")
    return None


def _explain(stack: str, target: str, status: str, reasons: list[str], lead: str = "") -> BatonError:
    """A stack in ``status``: why (the failed resources), and the way out when there is one."""
    way_out = _way_out(status, stack, target)
    hint = ""
    if target == "localstack" and any("lambda" in reason.lower() for reason in reasons):
        hint = ("\nLocalStack creates and runs functions only with Docker: start it with Docker "
                "(see the README, Targets)")
    return BatonError(f"{lead}stack {stack} on {target} is {status}:\n  " + "\n  ".join(reasons)
                      + (f"\n{way_out}" if way_out else "") + hint)


def _delete(cfn: Any, target: str, stack: str, stack_id: str, say: Callable[[str], None]) -> None:
    """Delete a stack, followed by id; a delete that fails is retried once (LocalStack's first
    delete of a rolled-back stack fails on resources its rollback never created), then explained."""
    for attempt in (1, 2):
        started = time.time()
        with explained(f"deleting stack {stack} on {target}"):
            cfn.delete_stack(StackName=stack_id)
            final = _follow_stack(cfn, stack_id, started, say)
            # LocalStack shows DELETE_FAILED between the passes of one delete: give it time to end.
            settle_until = time.monotonic() + DELETE_SETTLE_S
            while final["StackStatus"] == "DELETE_FAILED" and time.monotonic() < settle_until:
                time.sleep(POLL_S)
                final = _follow_stack(cfn, stack_id, started, say)
        if final["StackStatus"] == "DELETE_COMPLETE":
            return
        if attempt == 1:
            say(f"stack {stack} is {final['StackStatus']}; retrying the delete once")
    raise _explain(stack, target, final["StackStatus"],
                   failure_reasons(cfn, stack_id, started) or _latest_failures(cfn, final),
                   lead="could not delete it: ")


def _check_deployable(cfn: Any, target: str, stack: str, existing: dict[str, Any] | None,
                      say: Callable[[str], None]) -> dict[str, Any] | None:
    """The stack to update (None: create it); cleans a failed create, explains other dead ends."""
    if existing is None or existing["StackStatus"] == "DELETE_COMPLETE":
        return None
    status = existing["StackStatus"]
    if status == "ROLLBACK_COMPLETE":
        # A create that failed and was rolled back: nothing in it ever served, and AWS allows only
        # deleting it, so deleting it is safe and the only way forward.
        say(f"stack {stack} is ROLLBACK_COMPLETE after a failed create; deleting it first")
        _delete(cfn, target, stack, existing["StackId"], say)
        return None
    if status == "REVIEW_IN_PROGRESS":
        return None  # created by a change set never executed: a CREATE change set is what it takes
    if _way_out(status, stack, target) is not None:
        raise _explain(stack, target, status, _latest_failures(cfn, existing))
    return existing


def _create_change_set(cfn: Any, target: str, stack: str, body: str, parameters: dict[str, str],
                       existing: dict[str, Any] | None, say: Callable[[str], None]
                       ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Create the change set (CREATE or UPDATE); a stack that appeared meanwhile is updated.

    None for the change set when the target refuses it at once for having no changes (moto does,
    like UpdateStack; AWS creates it and fails it instead).
    """
    for _ in range(2):
        try:
            created = cfn.create_change_set(
                StackName=stack, ChangeSetName=f"baton-{int(time.time() * 1000)}",
                ChangeSetType="UPDATE" if existing else "CREATE",
                TemplateBody=body, Capabilities=CAPABILITIES,
                Parameters=parameter_list(parameters, existing),
            )
            return dict(created), existing
        except ClientError as error:
            if existing is not None and NO_UPDATES in str(error):
                return None, existing
            if existing is not None or "already exists" not in str(error):
                raise BatonError(f"CloudFormation refused the change set for {stack}: "
                                 f"{error.response.get('Error', {}).get('Message', error)}"
                                 ) from error
            # The stack exists although it was not there a moment ago (or not visible as such):
            # look again, explain a dead end, update a live stack.
            existing = _check_deployable(cfn, target, stack, stack_status(cfn, stack), say)
            if existing is None:
                raise BatonError(f"stack {stack} already exists on {target} but cannot be "
                                 f"described; run `baton destroy --target {target} "
                                 f"--stack-name {stack}`, then deploy again") from error
    raise AssertionError("unreachable")


def _unchanged(cfn: Any, existing: dict[str, Any], body: str, parameters: dict[str, str]) -> bool:
    """True when the deployed template and parameter values are exactly those given.

    Decides an empty change set: LocalStack answers an unchanged deploy with one (AWS fails the
    change set instead), but an empty one may also carry a new parameter value or output.
    """
    deployed_values = {p["ParameterKey"]: p.get("ParameterValue")
                       for p in existing.get("Parameters", [])}
    if any(deployed_values.get(key) != value for key, value in parameters.items()):
        return False
    try:
        deployed = cfn.get_template(StackName=existing["StackId"],
                                    TemplateStage="Original")["TemplateBody"]
    except ClientError:
        return False
    if isinstance(deployed, str):
        try:
            deployed = json.loads(deployed)
        except json.JSONDecodeError:
            return False
    return bool(json.loads(json.dumps(deployed)) == json.loads(body))


def no_changes_reason(described: dict[str, Any]) -> bool:
    """True when a FAILED change set failed only because nothing changed (AWS's wording)."""
    reason = described.get("StatusReason", "")
    return described["Status"] == "FAILED" and (
        "didn't contain changes" in reason or NO_UPDATES in reason)


@dataclass
class DeployResult:
    stack: str
    changed: bool
    outputs: dict[str, str]


def deploy(target: str, stack: str = DEFAULT_STACK, parameters: dict[str, str] | None = None,
           template_path: Path = TEMPLATE, say: Callable[[str], None] = print,
           build_dir: Path | None = None, create_defaults: dict[str, str] | None = None
           ) -> DeployResult:
    """Build, upload and deploy ``template_path`` as ``stack`` on ``target``.

    Parameters not given keep their deployed values; ``create_defaults`` are values for a stack
    created by this deploy (an emulator's allowlist for the sample site) unless given.
    """
    build_dir = build_dir or ROOT / "build" / target
    problems = lint_template(template_path, build_dir)
    if problems:
        raise BatonError("cfn-lint found problems in the template:\n  " + "\n  ".join(problems))
    template = load_template(template_path)
    parameters = parameters or {}
    unknown = set(parameters) - set(template.get("Parameters", {}))
    if unknown:
        raise BatonError(f"unknown parameter(s) {', '.join(sorted(unknown))}; the template "
                         f"declares: {', '.join(template.get('Parameters', {})) or 'none'}")
    packaged = package(template, Uploader(target, say), build_dir, for_aws=target == "aws")
    body = json.dumps(packaged)
    cfn = client("cloudformation", target)
    with explained(f"reading stack {stack} on {target}"):
        existing = _check_deployable(cfn, target, stack, stack_status(cfn, stack), say)
    if existing is None:  # created now: the defaults apply; later deploys keep deployed values
        parameters = {**(create_defaults or {}), **parameters}
    change_set, existing = _create_change_set(cfn, target, stack, body, parameters, existing, say)
    if change_set is None:
        return DeployResult(stack, False, outputs_of(existing or {}))
    with explained(f"waiting for the change set of {stack}"):
        described = _wait_for_change_set(cfn, change_set["Id"])
    unchanged = no_changes_reason(described) or (
        existing is not None and described["Status"] == "CREATE_COMPLETE"
        and not described["Changes"] and _unchanged(cfn, existing, body, parameters))
    if unchanged:
        with explained("deleting the empty change set"):
            cfn.delete_change_set(ChangeSetName=change_set["Id"])
        return DeployResult(stack, False, outputs_of(existing or {}))
    if described["Status"] == "FAILED":
        raise BatonError(f"CloudFormation rejected the change set: {described.get('StatusReason', '')}")
    say(f"deploying stack {stack}: {len(described['Changes'])} change(s)")
    for change in described["Changes"]:
        resource = change["ResourceChange"]
        details = sorted({d.get("Target", {}).get("Name") or "" for d in resource.get("Details", [])})
        say(f"  {resource.get('Action', '?'):<8} {resource['LogicalResourceId']}"
            + (f" ({', '.join(filter(None, details))})" if any(details) else ""))
    started = time.time()
    stack_id = change_set.get("StackId") or stack
    with explained(f"deploying stack {stack}"):
        cfn.execute_change_set(ChangeSetName=change_set["Id"])
        final = _follow_stack(cfn, stack_id, started, say)
    if not final["StackStatus"].endswith("_COMPLETE") or "ROLLBACK" in final["StackStatus"] \
            or final["StackStatus"] == "DELETE_COMPLETE":
        reasons = failure_reasons(cfn, stack_id, started) or [final.get("StackStatusReason", "")]
        raise _explain(stack, target, final["StackStatus"], reasons, lead="deploy failed, ")
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
    """Delete the stack (a failed delete is retried once); False when there was none."""
    cfn = client("cloudformation", target)
    with explained(f"reading stack {stack} on {target}"):
        existing = stack_status(cfn, stack)
    if existing is None:
        return False
    _delete(cfn, target, stack, existing["StackId"], say)
    return True
