"""The clock of tagsweep's Lua scripts: Redis server time in milliseconds (``TIME``), never a
worker's clock, so that workers on many hosts agree."""

from __future__ import annotations

# Sets ``now`` (ms, whole) at the top of a script.
NOW = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
