"""Bad user input and things the user should know: the CLI prints a UserError's message on one
line and exits 2; a Caution prints as one `warning:` line (from Python: a warnings.warn)."""
import warnings


class UserError(Exception):
    """Input the user can fix (path, file format, option value). Never a bug in our code."""


class Caution(UserWarning):
    """A run that works but is probably not what the user meant (a file's producer, a silent run)."""


def caution(message: str) -> None:
    warnings.warn(message, Caution, stacklevel=2)
