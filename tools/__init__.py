"""Tools an agent may call: specs, registry, allowlists, checked execution, audit.

docs/tools.md describes registration, error codes, allowlists, quoting and audit.
"""

from tools.audit import AuditRecord, AuditSink, LoggingAuditSink, MemoryAuditSink
from tools.builtins import builtin_registry
from tools.execute import ToolInvocation, execute
from tools.outcome import ToolErrorCode, ToolOutcome
from tools.quoting import quote_result
from tools.registry import ToolRegistry, effective_allowlist
from tools.spec import ToolHandler, ToolSpec

__all__ = [
    "AuditRecord",
    "AuditSink",
    "LoggingAuditSink",
    "MemoryAuditSink",
    "ToolErrorCode",
    "ToolHandler",
    "ToolInvocation",
    "ToolOutcome",
    "ToolRegistry",
    "ToolSpec",
    "builtin_registry",
    "effective_allowlist",
    "execute",
    "quote_result",
]
