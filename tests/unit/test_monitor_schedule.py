"""Schedule expressions: EventBridge's rate() and 6-field cron() accepted, the rest explained."""

from __future__ import annotations

import pytest

from baton.errors import BatonError
from baton.schedule import unix_to_aws, validate_schedule


@pytest.mark.parametrize("expression", [
    "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)",
    "rate(7 days)", "cron(0 12 * * ? *)", "cron(*/5 * * * ? *)", "cron(0/15 * ? * MON-FRI *)",
    "cron(15 10 ? * 6L 2030-2035)", "cron(0 8 1,15 JAN-MAR ? *)", "cron(0 10 L * ? *)",
    "cron(0 9 15W * ? *)", "cron(0 18 ? * 6#3 *)", "  rate(2 minutes)  ",
])
def test_valid_expressions_are_accepted(expression: str) -> None:
    assert validate_schedule(expression) == expression.strip()


@pytest.mark.parametrize(("expression", "message"), [
    ("rate(1 minutes)", "singular for 1: rate(1 minute)"),
    ("rate(5 minute)", "plural above 1: rate(5 minutes)"),
    ("rate(0 minutes)", "positive whole number"),
    ("rate(1.5 hours)", "positive whole number"),
    ("rate(5 seconds)", "minute(s), hour(s) or day(s)"),
    ("rate(5)", "rate(value unit)"),
    ("cron(0 12 * * * *)", "exactly one of Day-of-month and Day-of-week must be '?'"),
    ("cron(0 12 ? * ? *)", "exactly one of Day-of-month and Day-of-week must be '?'"),
    ("cron(60 12 * * ? *)", "Minutes '60'"),
    ("cron(0 24 * * ? *)", "Hours '24'"),
    ("cron(0 12 * 13 ? *)", "Month '13'"),
    ("cron(0 12 ? * 0 *)", "Day-of-week '0'"),
    ("cron(0 12 * * ? 1969)", "Year '1969'"),
    ("cron(0 ? * * ? *)", "'?' is only allowed in Day-of-month or Day-of-week"),
    ("cron(0 12 * * ?)", "Unix cron"),
    ("cron(0 12 * * ? * *)", "6 fields"),
    ("every 5 minutes", "not a schedule expression"),
    ("", "empty"),
    ("RATE(5 minutes)", "lower case"),
    ("@hourly", "rate(1 hour)"),
])
def test_invalid_expressions_say_why(expression: str, message: str) -> None:
    with pytest.raises(BatonError) as raised:
        validate_schedule(expression)

    assert message in str(raised.value)


def test_a_unix_cron_gets_the_aws_form_of_the_same_schedule() -> None:
    with pytest.raises(BatonError) as raised:
        validate_schedule("*/5 * * * *")

    message = str(raised.value)
    assert "Unix cron expression (5 fields)" in message
    assert "cron(Minutes Hours Day-of-month Month Day-of-week Year)" in message
    assert message.endswith("cron(*/5 * * * ? *)")
    validate_schedule("cron(*/5 * * * ? *)")  # the suggestion itself is valid


@pytest.mark.parametrize(("unix", "aws"), [
    ("*/5 * * * *", "cron(*/5 * * * ? *)"),
    ("0 9 * * 1-5", "cron(0 9 ? * 2-6 *)"),  # Unix Monday-Friday is 2-6 in EventBridge
    ("0 0 * * 0", "cron(0 0 ? * 1 *)"),  # Sunday
    ("0 0 * * 7", "cron(0 0 ? * 1 *)"),  # Unix's other Sunday
    ("30 2 1 * *", "cron(30 2 1 * ? *)"),
    ("0 */2 * * */2", "cron(0 */2 ? * */2 *)"),  # a step is not a day number
])
def test_unix_cron_translation(unix: str, aws: str) -> None:
    assert unix_to_aws(unix.split()) == aws
    validate_schedule(aws)
