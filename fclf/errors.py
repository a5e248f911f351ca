"""One exception type for problems a user can fix (bad params, bad files).

Stages and the CLI print these as a few readable lines and exit non-zero,
without a traceback; anything else is a bug and keeps its traceback.
"""

import functools
import sys


class FclfError(Exception):
    """A user-facing error: the message says what is wrong and where."""


class ConfigError(FclfError):
    """A params file that does not match the schema."""


class DataError(FclfError):
    """An input file (embeddings, CelebA text files, images) that is malformed."""


def exit_on_user_error(func):
    """Decorator for entry points: an FclfError becomes one stderr line and exit code 2."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FclfError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
