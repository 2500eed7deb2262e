"""A LocalStack that cannot create functions (host mode as shipped, no Docker): every command the
user tries next gives a clear message and a non-zero exit, never a traceback, and the stack can be
cleaned up. This is what a user without Docker meets; the template itself is proven by
test_deploy_localstack.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from baton import deploy
from tests.localstack.conftest import baton, start_localstack

STACK = "baton-ls-nodocker"


@pytest.fixture(scope="module")
def localstack() -> Iterator[str]:
    yield from start_localstack(stand_in_docker=False)


def deploy_fails() -> str:
    result = baton("deploy", "--target", "localstack", "--stack-name", STACK)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_deploy_whose_functions_cannot_be_created_says_which_and_why(localstack):
    stderr = deploy_fails()

    failure = stderr.split("baton deploy: error: deploy failed, ")[1]
    assert failure.startswith(f"stack {STACK} on localstack is ROLLBACK_COMPLETE:\n  ")
    assert "Function: " in failure and "lambda" in failure.lower()
    assert "LocalStack creates and runs functions only with Docker" in failure


def test_deploying_again_cleans_the_failed_stack_then_fails_the_same_clear_way(localstack):
    stderr = deploy_fails()

    assert f"stack {STACK} is ROLLBACK_COMPLETE after a failed create; deleting it first" in stderr
    assert "already exists" not in stderr
    assert "baton deploy: error: deploy failed, " in stderr
    assert "LocalStack creates and runs functions only with Docker" in stderr


def test_destroy_removes_what_the_failed_deploys_left(localstack):
    result = baton("destroy", "--target", "localstack", "--stack-name", STACK)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert deploy.stack_status(deploy.client("cloudformation", "localstack"), STACK) is None
