"""Waiting in tests for what the sandbox does a moment later (a watch applying an aws-auth edit,
kube-apiserver's 10 s cache of accepted tokens, an EKS update applying)."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def eventually(fn: Callable[[], T], done: Callable[[T], object] = bool, timeout: float = 10.0,
               every: float = 0.2) -> T:
    """FN() again and again until DONE(its result) or TIMEOUT seconds have passed; returns the
    last result, which the caller asserts on (a failure then shows what was seen last)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)
