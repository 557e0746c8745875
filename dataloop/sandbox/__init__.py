"""Run untrusted Python (student code, teacher solutions, generated tests) in a sandbox.

Each program runs as ``python -I -S`` (no environment variables, no site-packages: the standard
library only) in a fresh working directory that is gone after. The layers, outermost first:

- **namespaces** (bubblewrap, ``bwrap``): fresh mount, PID, network, IPC and UTS namespaces.
  The program sees a read-only Python installation and system libraries, its working directory
  (a tmpfs of ``disk_mb``: all it may write) and nothing else of the file system; its own
  ``/proc`` (no other process, no parent's environment); no network interface but its own
  loopback. Run as root, the program then drops to user ``nobody``; otherwise a user namespace
  maps it to ``nobody`` and the kernel sees the calling (unprivileged) user. When the process
  that runs the sandbox dies, the namespace's processes die with it.
- **limits** (``setrlimit``): CPU seconds, address space, size of written files, open files, no
  core dumps, no new processes or threads (``RLIMIT_NPROC`` 0); a wall-clock timeout in the
  parent kills the whole sandbox.
- **an audit hook** (PEP 578) refuses sockets, new processes, signals, ``ctypes``, native
  modules from outside the installation, writing or listing outside the working directory,
  opening directories (no ``dir_fd`` to be relative to), more than ``max_files`` new files,
  and every way to reach a stack frame (``sys._getframe``, tracebacks' frames, tracing,
  ``gc``, signal handlers), so that the program cannot reach the harness's state.

**Verdicts cannot be faked by the program**: a run passes only when the harness, after the
program (and its ``tests``) ran to their end, writes a per-run nonce to a pipe the parent holds;
exit statuses alone mean nothing. The ``tests`` run in their own namespace with their own
builtins and see of the program only the functions they call (never its other globals); what
those return reaches them copied to plain builtin data, so no method of the program's classes
runs in their arithmetic or comparisons; and every comparison in them refuses to let an object
that is not plain data stand for plain data (see :func:`guard_comparisons`).

Where namespaces are not available (no ``bwrap``, or the kernel refuses), :func:`run_python`
refuses with :class:`SandboxUnavailable` unless called with ``unisolated=True``: then only the
limits and the audit hook remain, a Python-level guard that native code could get around; the
program writes in a host directory, at most ``disk_mb // file_mb`` files that hold data.
"""

from dataloop.sandbox.guard import free_names, guard_comparisons
from dataloop.sandbox.isolate import (
    NOBODY,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailable,
    Status,
    bwrap_argv,
    isolation_problem,
    run_python,
)

__all__ = [
    "NOBODY",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "Status",
    "bwrap_argv",
    "free_names",
    "guard_comparisons",
    "isolation_problem",
    "run_python",
]
