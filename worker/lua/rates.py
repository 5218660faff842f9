"""Lua script of the best 429-free rate a schedule ran at (``keys.rate_best``)."""

from __future__ import annotations

# Keep the higher of the rate remembered and the one measured; either way for 30 days more.
# KEYS: rate_best(bucket). ARGV: calls/s measured, TTL s. Returns the rate kept (a string).
KEEP_HIGHEST = """
local kept = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > kept then
  kept = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return tostring(kept)
"""
