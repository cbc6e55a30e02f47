"""Import DSPy the workbench's way: offline, and with no cache behind the user's back.

DSPy decides its disk-cache folder when it is first imported (`DSPY_CACHEDIR`, else
`~/.dspy_cache`). We point it inside the project's data folder before that import and then turn
the cache off, so every LM call goes through the workbench's completion layer and is counted.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from workbench import config

_lock = threading.Lock()
_ready = False


def import_dspy() -> Any:
    """The `dspy` module, imported once with its cache kept under data/ and switched off."""
    global _ready
    if _ready:
        import dspy

        return dspy
    with _lock:
        config.apply_offline_env()
        os.environ.setdefault("DSPY_CACHEDIR", str(config.data_dir() / "dspy_cache"))
        import dspy

        if not _ready:
            dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
            _ready = True
    return dspy
