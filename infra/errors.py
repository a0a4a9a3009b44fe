"""The project's own errors: problems a user can fix, reported as a message without a traceback.

Anything raised from these is bad input or an environment the project cannot use (a config key, a
manifests tree, a cluster that is not the stack's). The Pulumi program turns them into
`pulumi.RunError`, which the engine prints as a plain error; `kfstack` prints them as one
`error: ...` line and exits with their `exit_code`; every other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the message alone explains, with the fix."""

    exit_code = 1  # what `kfstack` exits with when it reports one


class UsageError(UserError):
    """Bad input to a command, found before anything was created."""

    exit_code = 2
