"""What the Pulumi SDK sends per registration that nothing here reads, left out of the program's runs.

For every resource it registers, the SDK sends the engine four debug messages, each a blocking
call on the program's event loop; for Kubeflow's ~565 resources that was about 2,300 calls and
about 3 s of a 10 to 13 s no-op `pulumi up` (docs/benchmarks.md, the no-op profile). The engine
shows them only under `pulumi up --debug`, and the SDK has no setting for them, so the program
swaps the `log` its registration modules read for one without `debug` (SDK 3.259's layout:
tests/test_registration_logs.py notices if an upgrade changes it). A process-wide setting, so it
is made once, at the program's entry (infra/program.py).

The SDK also captures the Python stack twice per registration (`traceback.extract_stack`, each
frame's source line read) and sends it with the request; the engine stores it in the state (0.8 MB
of a full release's 8.4 MB, written by every `pulumi up`) for the Pulumi Cloud console's "source
position", which a file backend never shows. The program sends an empty trace instead.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pulumi

# Set (to anything) to keep the SDK's per-registration debug messages (`pulumi up --debug`).
SDK_DEBUG_VARIABLE = "KFSTACK_PULUMI_SDK_DEBUG"
# The SDK modules that log per registration ("registering resource", "beginning rpc ...").
REGISTRATION_MODULES = ("pulumi.runtime.resource", "pulumi.runtime.rpc_manager")
# The SDK function that captures the stack for each registration (pulumi/runtime/resource.py).
STACK_TRACE_MODULE, STACK_TRACE_FUNCTION = "pulumi.runtime.resource", "_get_stack_trace"


class _RegistrationLog:
    """`pulumi.log` as the SDK's registration code sees it, minus `debug`."""

    @staticmethod
    def debug(*_args: Any, **_kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(pulumi.log, name)


def quiet_registration_debug_logs() -> None:
    """Stop the SDK sending its debug messages per registration, unless `SDK_DEBUG_VARIABLE` is
    set. Nothing registered, applied or stored changes; warnings and errors still go."""
    if os.environ.get(SDK_DEBUG_VARIABLE):
        return
    for module_name in REGISTRATION_MODULES:
        module = importlib.import_module(module_name)
        if not isinstance(getattr(module, "log", None), _RegistrationLog):
            setattr(module, "log", _RegistrationLog())  # noqa: B010 (the SDK reads its module attribute)


def _no_stack_trace() -> Any:
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


def skip_registration_stack_traces() -> None:
    """Send each registration with an empty stack trace (so no source position), unless
    `SDK_DEBUG_VARIABLE` is set. Nothing registered or applied changes."""
    if os.environ.get(SDK_DEBUG_VARIABLE):
        return
    module = importlib.import_module(STACK_TRACE_MODULE)
    if not callable(getattr(module, STACK_TRACE_FUNCTION, None)):
        return  # an SDK that no longer captures it this way: nothing to skip
    setattr(module, STACK_TRACE_FUNCTION, _no_stack_trace)
