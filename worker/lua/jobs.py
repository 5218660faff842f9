"""Lua scripts of a job's record: its state changes (running, stopped) and its retention.

Each is one atomic step on Redis time (``worker.lua.clock``); ``worker.store.jobs`` runs them.
"""

from __future__ import annotations

from worker.lua.clock import NOW

# A queued job becomes running (with its start time) when its first chunk starts.
MARK_RUNNING = (
    NOW
    + """
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', now)
end
return redis.call('HGET', KEYS[1], 'state')
"""
)

# Abort or cancel a job that is still going; keeps the first reason. ARGV: the state, the
# reason, and (optional, an abort) the status its cause gave rows: the job's ``resend``.
STOP_JOB = (
    NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'finished_at', now)
  if ARGV[3] and ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'resend', ARGV[3]) end
  return 1
end
return 0
"""
)

# STOP_JOB, allowed to run when Redis is out of memory (Redis >= 7: a script flag), so that the
# job can say why it stopped; the few bytes it writes are the point of the exception.
STOP_JOB_ALLOW_OOM = "#!lua flags=allow-oom\n" + STOP_JOB

# Give a finished job's keys a TTL, or take the TTLs off (a retried job), some keys at a time.
# KEYS: the job's record, then some of its other keys; with ARGV[3] == '1' the last is the job's
# resume key, touched only while it still names this job (``run --new`` points it at a newer
# job). ARGV: "expire" or "persist", the job id, "1"/"0", and "1" for the last call of a job
# (the record itself is expired, deleted or persisted only then, since each call reads it).
# Returns the expiry (ms since the epoch) set, or 0 (still going, kept forever, or persisted).
# The PEXPIREATs come before the HSET: a script's first write decides whether Redis refuses it
# when out of memory, and PEXPIREAT (which frees memory) is allowed then.
APPLY_RETENTION = """
local record = KEYS[1]
local last = #KEYS
local final = ARGV[4] == '1'
if ARGV[3] == '1' then
  if redis.call('GET', KEYS[last]) ~= ARGV[2] then last = last - 1 end
end
if ARGV[1] == 'persist' then
  for i = 2, last do redis.call('PERSIST', KEYS[i]) end
  if final then
    redis.call('PERSIST', record)
    redis.call('HDEL', record, 'expires_at')
  end
  return 0
end
local h = redis.call('HMGET', record, 'state', 'finished_at', 'keep_ms')
if not h[1] or h[1] == 'queued' or h[1] == 'running' then return 0 end
local keep = tonumber(h[3] or '')
if not keep or keep <= 0 then return 0 end
local at = tonumber(h[2] or '0') + keep
local t = redis.call('TIME')
if at <= t[1] * 1000 + math.floor(t[2] / 1000) then
  for i = 2, last do redis.call('DEL', KEYS[i]) end
  if final then redis.call('DEL', record) end
  return at
end
for i = 2, last do redis.call('PEXPIREAT', KEYS[i], at) end
if final then
  redis.call('HSET', record, 'expires_at', at)
  redis.call('PEXPIREAT', record, at)
end
return at
"""

# Count the time a job's rows were worked (``JobField.ACTIVE_MS``): the holder of a lease says
# (at each flush of results, renewal and release) how long it held it since it last said so
# (``worked``, ms, its own clock), i.e. the interval [now - worked, now]; only the part after
# the job's ``active_at`` (the end of what is counted already) is added, so that leases held
# side by side count once. Intervals arrive in the order of their ends (Redis time), so this
# adds the union of the leases' holding times, short of a gap no holder spans (at most a
# renewal period, ``lease_s / 3``). Nothing for a job whose record is gone (forgotten while
# held). Needs ``now``; ``record`` is the job's record key. Two fields, one HGET and one HSET:
# cheap beside the result script's own work.
ADD_ACTIVE = """
local function add_active(record, worked)
  if worked <= 0 or redis.call('HEXISTS', record, 'state') == 0 then return end
  local at = tonumber(redis.call('HGET', record, 'active_at') or '0')
  local from = math.max(now - worked, at)
  if now > from then redis.call('HINCRBY', record, 'active_ms', now - from) end
  if now > at then redis.call('HSET', record, 'active_at', now) end
end
"""
