"""Lua scripts of chunk leases (take, renew, release, reap) and of the live-workers set.

Each is one atomic step on Redis time (``worker.lua.clock``), so workers on many hosts agree
on who holds a chunk; ``worker.store.leases`` and ``worker.store.sync`` run them.
"""

from __future__ import annotations

from worker.lua.clock import NOW
from worker.lua.jobs import ADD_ACTIVE

# Take a chunk's lease. KEYS: leases, owners, done-chunks. ARGV: member, owner, ttl ms, chunk.
# Returns 'done' (nothing left to do), 'busy' (a live lease is held by another), or 'ok'.
ACQUIRE_LEASE = (
    NOW
    + """
if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then return 'done' end
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner and owner ~= '' and owner ~= ARGV[2] and expires and tonumber(expires) > now then
  return 'busy'
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 'ok'
"""
)

# Extend a lease still held, and count the time it was held since the last renewal.
# KEYS: leases, owners, the job's record. ARGV: member, owner, ttl ms, ms held since last said.
RENEW_LEASE = (
    NOW
    + ADD_ACTIVE
    + """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 'lost' end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
add_active(KEYS[3], tonumber(ARGV[4]))
return 'ok'
"""
)

# Mark a chunk done (when complete, and only while its job's record is there: a job forgotten
# meanwhile is not brought back) and drop its lease if still ours, counting the time it was
# held since its last renewal (ADD_ACTIVE).
# KEYS: leases, owners, done-chunks, then (needed when complete or worked) the job's record.
# ARGV: member, owner, chunk, complete (1/0), then optionally ms held since last said.
RELEASE_LEASE = (
    NOW
    + ADD_ACTIVE
    + """
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('SADD', KEYS[3], ARGV[3])
end
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  if KEYS[4] then add_active(KEYS[4], tonumber(ARGV[5] or '0')) end
end
return 'ok'
"""
)

# Take back expired leases: each is given a grace period and no owner, and returned so that the
# caller re-dispatches it. If the caller dies first, the entry expires again and another reaper
# takes it: nothing is lost. KEYS: leases, owners. ARGV: grace ms, limit.
REAP_LEASES = (
    NOW
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(expired) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), member)
  redis.call('HSET', KEYS[2], member, '')
end
return expired
"""
)

# A worker process's heartbeat in the live-workers set; entries silent for an hour are dropped.
# KEYS: workers. ARGV: member. Scores are Redis time (ms), comparable across hosts.
BEAT = (
    NOW
    + """
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
return now
"""
)
