"""The shapes that travel between a caller and the fork server, one JSON line each way."""

from __future__ import annotations

from typing import Any, TypedDict


class SandboxJob(TypedDict, total=False):
    """One job for the fork server: what to call, with what, and how it is confined."""

    id: int  # set by the client; the reply carries it back
    function: str  # "module:function" of a module-level function
    kwargs: dict[str, Any]  # JSON-able keyword arguments
    threads: int | None  # torch intra-op threads in the child (None: torch's default)
    sys_path: list[str]  # import roots the child adds (read-only in its policy)
    warm: list[str]  # trusted modules the server imports after a clean run
    timeout_s: float
    cwd: str
    env: dict[str, str]  # the child's whole environment (secrets already removed)
    policy: dict[str, Any]  # see policy.make_policy


class SandboxReply(TypedDict, total=False):
    """The server's answer for one job; a reply may carry further keys (kept as ``SandboxResult.extra``)."""

    id: int
    ok: bool
    value: Any
    error_type: str | None
    error: str | None
    traceback: str
    details: Any
    output: str
    duration_s: float
    timed_out: bool
