"""The local cloud switches the X-Ray SDK off in its workers, as no daemon receives their traces."""

import pytest

from baton.localcloud.launcher import without_xray_daemon


@pytest.mark.parametrize(("environment", "expected"), [
    ({}, "false"),
    ({"AWS_XRAY_SDK_ENABLED": "true"}, "true"),  # set by the function or the cloud: kept
    ({"AWS_XRAY_SDK_ENABLED": "false"}, "false"),
    ({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"}, None),  # a daemon is named: left on
])
def test_the_sdk_is_off_unless_the_environment_decides(environment, expected):
    without_xray_daemon(environment)

    assert environment.get("AWS_XRAY_SDK_ENABLED") == expected
