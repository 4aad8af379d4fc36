"""Small helpers shared by the agent tests."""

import time

import psutil


def wait_until_gone(pid: int, deadline_s: float = 10) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited), polling until the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
            process.wait(timeout=0.1)
            return True
        except psutil.NoSuchProcess:
            return True
        except psutil.TimeoutExpired:
            continue
    return False
