"""The project's own errors: problems a user can fix, reported as a message without a traceback.

Anything raised from these is bad input or an environment the project cannot use (a config key, a
manifests tree, a cluster that is not the stack's). The Pulumi program turns them into
`pulumi.RunError`, which the engine prints as a plain error; every other exception is a bug and
keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the message alone explains, with the fix."""
