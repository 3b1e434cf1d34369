"""The one error type users see.

Anything a user can get wrong (a bad budget string, bad YAML, a missing dataset, a corrupt LUT)
raises :class:`GhostNASError` with a message that names the problem and the fix. The CLI prints
that message on one line and exits with status 2.
"""


class GhostNASError(ValueError):
    """A user-facing mistake: the message says what is wrong and how to fix it."""
