"""The smoke suite: one set of checks that any Kubeflow stack, or the local conformance target, must pass.

It stands alone (its own distribution, `smoke_tests/pyproject.toml`) and imports nothing of the
Pulumi program; the program imports from it instead: the small utilities both need (`run`,
`process`, `wait`, `secret`, `cache`, `tools`), the stack-outputs contract (`contract`) and the
local target's state file (`local`).
"""
