"""One call to see the library's log lines, for scripts that configure no logging."""

from __future__ import annotations

import logging
import sys
from typing import Union

#: The handler :func:`log_to_stderr` installed, so a second call replaces it.
_MARK = "_golem_tasks_stderr"


class _NotOnScreen(logging.Filter):
    """Drops the records the progress bar already printed (the job summary), so turning
    logging on while the bar is on does not show the summary twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "golem_tasks_on_screen", False)


def log_to_stderr(level: Union[int, str] = "INFO", logger: str = "golem_tasks") -> logging.Handler:
    """Print the library's log lines at ``level`` and above on stderr.

    The library never configures logging itself; this is the one-call way to see what it
    does (engaged providers, retries, the end-of-job summary) when the progress bar is off,
    e.g. with output piped or ``progress=False``. Calling it again replaces the handler it
    installed before. Returns the handler (``logging.getLogger(logger).removeHandler(h)``
    undoes it).

    Args:
        level: ``"DEBUG"``, ``"INFO"`` (the summary), ``"WARNING"``, ... or a number.
        logger: the logger to show, ``"golem_tasks"`` (everything) by default;
            ``"golem_tasks.summary"`` shows the end-of-job summary alone.
    """
    target = logging.getLogger(logger)
    for old in [h for h in target.handlers if getattr(h, _MARK, False)]:
        target.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_NotOnScreen())
    setattr(handler, _MARK, True)
    target.addHandler(handler)
    target.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
