"""The one error type the CLI turns into a message and an exit code."""


class BatonError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_code = 1
