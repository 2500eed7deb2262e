"""Bad command lines get a usage message and exit code 2, before anything runs."""

import pytest

from baton.cli import main


@pytest.mark.parametrize("argv", [["launch"], ["up", "--bogus"], ["up", "--port", "abc"], []])
def test_bad_command_line_exits_2_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert "usage: baton" in capsys.readouterr().err
