"""kfstack's sub-commands: one module per sub-command, named after it, and nothing else.

A module here parses its arguments, calls the library in its domain package (`infra.toolchain`,
`infra.conformance`, ...) and prints; it is never imported by anything but `infra.cli`, so no
library code lives here. A problem the user can fix is raised as `infra.errors.UserError` (or a
library error turned into one by `base.failures`); `infra.cli` prints it as one `error:` line.
"""
