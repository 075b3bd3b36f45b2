"""Failures logged without what they quote: an exception's message may carry a resident's text
(a validation error shows its input), so logs at INFO and above get the exception's class and
where it was raised; the whole of it goes to DEBUG."""

from __future__ import annotations

import logging
import traceback

FRAMES = 12


def where_failed(exc: BaseException) -> str:
    """«ValueError» and the frames it came through (file, line, function), no message."""
    frames = traceback.extract_tb(exc.__traceback__)[-FRAMES:]
    lines = [f"  {frame.filename}:{frame.lineno} in {frame.name}" for frame in frames]
    return "\n".join([f"{exc.__class__.__module__}.{exc.__class__.__qualname__}", *lines])


def log_failure(log: logging.Logger, exc: BaseException, what: str, *args: object) -> None:
    """``what % args`` at ERROR with the exception's class and frames; the details at DEBUG."""
    log.error(what + ": %s", *args, where_failed(exc))
    log.debug(what + " (details)", *args, exc_info=exc)
