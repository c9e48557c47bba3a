"""Child processes that run in a process group of their own and never outlive the process that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: should the parent die, even by SIGKILL, the kernel sends SIGTERM.
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def start_child(command: Sequence[str], *, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `command` as the leader of a new process group, sharing our stdout and stderr.

    Ctrl-C in a terminal then reaches only us, and we decide how and in which order the children stop.
    """
    return subprocess.Popen(
        list(command),
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )


def stop_child(process: subprocess.Popen[bytes], *, timeout: float = 15.0) -> int:
    """SIGTERM the child, wait for it, SIGKILL what is left of its process group; returns the child's exit code."""
    stop_children([process], timeout=timeout)
    return process.returncode


def stop_children(processes: Sequence[subprocess.Popen[bytes]], *, timeout: float = 15.0) -> None:
    """Stop several children at once: all are asked together, each gets what is left of `timeout`.

    Only the leader is asked (each stops its own children, once); the group is killed when time is up.
    """
    for process in processes:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        # whatever the leader left behind in its group
        _signal_group(process.pid, signal.SIGKILL)


def _signal_group(group_id: int, signal_number: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(group_id, signal_number)
