"""The one error type the command line turns into a single line on stderr and exit code 2."""


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit code 2, nothing written."""
