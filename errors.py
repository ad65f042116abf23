"""One exception type for bad user input: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """Input the user can fix (path, file format, option value). Never a bug in our code."""
