"""structlog, configured once: JSON lines on stdout (console renderer on a TTY), with every
stdlib record (Celery's own included) going through the same processors.

Redaction is the last step before rendering: any field named like a secret is masked, and any
registered secret value (the SK, a token, a password) is replaced wherever it appears in a
string, so a secret cannot reach a log line even through an exception message.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"
_SECRET_NAMES = re.compile(r"(^|_)(sk|password|passwd|secret|token|authorization)$", re.I)
# Signature and token shapes that may sit inside free text (a repr of headers, a URL), each
# with a plain substring that must be present for the pattern to apply: most log fields hold
# none, and the substring test is what keeps redaction off the per-request cost (profiled: the
# regexes alone were a third of a worker's logging time).
_INLINE = [
    (("Signature=",), re.compile(r"(Signature=)[0-9a-fA-F]{16,}"), r"\1" + MASK),
    (
        ("oken", "OKEN"),
        re.compile(r"(X-Auth-Token['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+", re.I),
        r"\1" + MASK,
    ),
    (
        "oken",
        re.compile(r"(X-Security-Token['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+", re.I),
        r"\1" + MASK,
    ),
    (("@",), re.compile(r"(://[^:/@\s]*:)[^@/\s]+@"), r"\1" + MASK + "@"),
]


class Redactor:
    """Masks secrets in an event dict; secret values are registered at start-up."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def register(self, values: Iterable[str | None]) -> None:
        # Short values would mask ordinary words; real SKs, tokens and passwords are longer.
        self._values.update(v for v in values if v and len(v) >= 6)

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        for needles, pattern, replacement in _INLINE:
            if any(needle in text for needle in needles):
                text = pattern.sub(replacement, text)
        return text

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for name, value in list(event.items()):
            event[name] = self._field(name, value)
        return event

    def _field(self, name: str, value: Any) -> Any:
        """A field's value with its secrets masked and its JSON shape kept: counts stay
        numbers, a set of counts an object, a list an array (DESIGN: Logs), so that
        ``jq '.rows.deleted'`` works; anything else becomes its (scrubbed) text."""
        if _SECRET_NAMES.search(name) and value:
            return MASK
        if isinstance(value, str):
            return self.scrub(value)
        if value is None or isinstance(value, int | float | bool):
            return value
        if isinstance(value, Mapping):
            return {str(key): self._field(str(key), item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._field("", item) for item in value]
        return self.scrub(str(value))


REDACTOR = Redactor()


def configure_logging(
    *, json_output: bool | None = None, level: int | str = "INFO", stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib logging to ``stream`` (stdout) through one renderer."""
    if json_output is None:
        json_output = not sys.stdout.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.format_exc_info,
        REDACTOR,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings become log records, rendered alike
