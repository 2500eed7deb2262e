"""Bad deploy and invoke input is refused before anything reaches a target."""

from pathlib import Path

import pytest

from baton import cli, deploy
from baton.commands.deploy import parse_parameters
from baton.errors import BatonError


def test_invalid_template_is_refused_with_the_cfn_lint_message(tmp_path: Path):
    broken = tmp_path / "template.yaml"
    broken.write_text(deploy.TEMPLATE.read_text().replace("BillingMode: PAY_PER_REQUEST",
                                                         "BillingMode: PAY_PER_SMILE"))

    with pytest.raises(BatonError) as refused:
        deploy.deploy("local", template_path=broken)

    assert "cfn-lint" in str(refused.value)
    assert "PAY_PER_SMILE" in str(refused.value)


def test_unknown_parameter_names_the_declared_ones():
    with pytest.raises(BatonError, match=r"unknown parameter.*Colour.*ReviewThreshold"):
        deploy.deploy("local", parameters={"Colour": "blue"})


def test_unknown_function_lists_the_valid_names(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["invoke", "lambada"])

    assert exited.value.code == 2
    assert "'scraper', 'transformer', 'moderator', 'store', 'orchestrator'" in capsys.readouterr().err


def test_invalid_event_json_gives_the_parse_error_position(tmp_path: Path, capsys):
    event = tmp_path / "event.json"
    event.write_text('{"url": "http://x",\n  "run_id": }')

    code = cli.main(["invoke", "scraper", "--event", str(event)])

    assert code == 1
    assert "line 2 column 13" in capsys.readouterr().err


def test_param_without_equals_sign_is_refused():
    with pytest.raises(BatonError, match="KEY=VALUE"):
        parse_parameters(["ReviewThreshold"])


def test_the_projects_template_is_cfn_lint_clean():
    assert deploy.lint_template(deploy.TEMPLATE) == []
