"""What the shared rate limit's Lua scripts have in common: how their arguments and answers
are named once, and the Lua both run first.

Each script (``worker.limits.reserve``, ``worker.limits.throttle``) sits next to two frozen
dataclasses: its arguments (``argv()`` writes ARGV in field order) and its answer
(``from_reply`` reads the reply in field order). The Lua never indexes ARGV or builds its reply
by position: ``argv_lua`` names every ARGV after its field (``argv.ceiling_per_s``), and
``reply_lua`` defines ``reply{field = value, ...}``, which orders the answer by the fields and
refuses one missing. So a field is added, removed or moved in one place, its dataclass.

The keys are built in worker/keys.py (``rate_bucket``, ``rate_memory``, ``rate_accepted``,
``rate_throttled``) and passed in KEYS, the same four to both scripts. Times are in ms, with a
fraction (rates of hundreds a second need it). ARGV values reach Lua as strings: a script says
``tonumber`` where it computes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, fields
from typing import Any, Self

# The time of the step: ``argv.now`` (tests: an injected clock), else Redis's.
RATE_NOW = """
local now = tonumber(argv.now)
if not now then local t = redis.call('TIME'); now = t[1] * 1000 + t[2] / 1000 end
"""

# How long the limiter waits between probe calls while a window's quota is spent: a thirtieth
# of the window (at most ~3% of a window lost finding its end), within 0.1 s .. 10 s.
PROBE_MS = """
local function probe_ms(window_ms, unknown_ms)
  if not window_ms then return unknown_ms end
  return math.min(10000, math.max(100, window_ms / 30))
end
"""


class ScriptArgs:
    """A script's ARGV as a frozen dataclass: one field per argument, in ARGV's order."""

    def argv(self) -> list[Any]:
        return list(astuple(self))  # type: ignore[call-overload]

    @classmethod
    def lua(cls) -> str:
        """Lua naming each ARGV after its field: ``argv.<field>`` (a string, as Redis gives)."""
        named = ", ".join(f"{f.name} = ARGV[{i}]" for i, f in enumerate(fields(cls), 1))  # type: ignore[arg-type]
        return f"local argv = {{{named}}}\n"


# How a reply's value is read, by the annotation of its field (bool: Lua's 0 or 1).
_READ: dict[str, Callable[[Any], Any]] = {
    "float": float,
    "int": int,
    "bool": lambda value: bool(int(value)),
}


class ScriptReply:
    """A script's answer as a frozen dataclass: one field per value of the reply, in order."""

    @classmethod
    def from_reply(cls, reply: list[Any]) -> Self:
        names = fields(cls)  # type: ignore[arg-type]
        if len(reply) != len(names):
            raise ValueError(f"{cls.__name__}: {len(reply)} values, expected {len(names)}")
        return cls(*(_READ[str(f.type)](value) for f, value in zip(names, reply, strict=True)))

    @classmethod
    def lua(cls) -> str:
        """Lua ``reply{<field> = value, ...}``: the reply list in field order (floats as
        strings: Redis would truncate a Lua number to an integer)."""
        names = ", ".join(f"'{f.name}'" for f in fields(cls))  # type: ignore[arg-type]
        return f"""
local function reply(r)
  local out = {{}}
  for i, name in ipairs({{{names}}}) do
    if r[name] == nil then error('reply without ' .. name) end
    out[i] = r[name]
  end
  return out
end
"""
