"""The time the sandbox's AWS pieces judge signatures and tokens by.

Real time, plus an offset a test (or a curious learner) may set, so that "a token replayed
after 15 minutes" can be shown in seconds: `set_offset(state_dir, 16 * 60)`. Only the sandbox's
own gateway and token webhook read it; the Kubernetes binaries keep the machine's clock.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

_FILE = "clock-offset-seconds"
_state: Path | None = None
_path: str = ""  # the offset file's path, made once (a Path per call costs more than the stat)


def configure(state_dir: Path) -> None:
    global _state, _path
    _state = Path(state_dir)
    _path = str(_state / _FILE)


_cached: tuple[tuple, float] = ((), 0.0)  # (the file's stat signature, its offset)


def offset() -> float:
    """The offset now. Every token review asks: the file is read again only when it changed
    (a stat, where an open and a read cost ten times as much)."""
    global _cached
    if _state is None:
        return 0.0
    path = _path or str(_state / _FILE)
    try:
        st = os.stat(path)
    except OSError:
        return 0.0
    signature = (st.st_ino, st.st_mtime_ns, st.st_size)
    if _cached[0] == signature:
        return _cached[1]
    try:
        with open(path) as fh:
            value = float(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0
    _cached = (signature, value)
    return value


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset())


def set_offset(state_dir: Path | str, seconds: float) -> None:
    path = Path(state_dir) / _FILE
    if seconds:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(seconds))
        os.replace(tmp, path)
    else:
        path.unlink(missing_ok=True)
