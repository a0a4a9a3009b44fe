"""The pinned external tools: declared in infra/versions.toml, installed into the per-user cache.

Use `tool_path("kubectl")` to run a pinned tool, `find_binary("nginx")` where any working copy
will do, and `tools_env()` for the environment of commands that find tools on PATH (Pulumi finds
its language host and plugins that way).
"""

from infra.toolchain.locate import ToolMissingError, ToolStatus, find_binary, tool_path, tool_status, tools_env
from infra.toolchain.model import ToolchainError, load_toolchain

__all__ = ["ToolMissingError", "ToolStatus", "ToolchainError", "find_binary", "load_toolchain", "tool_path",
           "tool_status", "tools_env"]
