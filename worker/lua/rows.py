"""Lua scripts of a job's rows: recording results once each, and keeping what reads found.

Each is one atomic step on Redis time (``worker.lua.clock``); ``worker.store.rows`` runs them.
"""

from __future__ import annotations

from worker.lua.clock import NOW
from worker.lua.jobs import ADD_ACTIVE

# Record rows' results once each, count them, count the requests for the circuit breaker, and
# finish the job when the last row of all is final: ``completed`` when every row ended in one of
# the job's goal statuses, else ``completed_with_failures``. A row is final once its bit in the
# job's ``final`` bitmap is set: SETBIT returns the old bit, so a row already final (a chunk
# delivered twice, a flush sent again) is neither counted nor written again. Each entry's rows
# newly made final are appended, with the entry's result, to its chunk's results list.
# Also adds the calls made since the worker last recorded (calls, 429 answers, retries: the
# exporter's per-job counters, carried here so that they cost no round trip of their own).
# Adds the rows it made final and the 429s to the job's timeline (its bucket of 10 s of Redis
# time; ``keys.timeline``), which takes the record's TTL if it has none (a flush after the
# job's keys got theirs must not leave it behind).
# Sets the bit of each chunk that got rows outside the goals in the job's failure index
# (``keys.failed_chunks``; the chunk's number ends its results list's key), which takes the
# record's TTL as the timeline does: the job page reads those chunks only.
# Writes nothing when the job's record has no state (the job was forgotten or expired while a
# worker held a chunk): no part of the job comes back.
# KEYS: final, counts, job, then the results lists the entries name, then the timeline and the
# failure index.
# ARGV: requests (count), failed requests (count), goal statuses (space separated), calls, 429s,
# retries, the entries in one text (below), then the ms the chunk was worked since its holder
# last said (ADD_ACTIVE, optional). The entries, a line each: index of its list among the lists
# (1-based), status, refs (comma separated) and the result's JSON, separated by spaces (one
# argument for the whole flush: redis-py packs each argument in Python, four a row was half the
# cost of a flush; JSON has no raw newline).
# Returns {rows newly recorded, rows final in all, requests, failed requests, finished state,
# then status, rows newly recorded in it, ... (what the job's counts gained: the worker's
# ``job.progress`` lines are these, so that summed they are the job's counts)}
# ({0, 0, 0, 0, ''} when it wrote nothing).
# The width of a bucket of the job's timeline (``keys.timeline``), ms.
TIMELINE_BUCKET_MS = 10_000
TIMELINE = f"local TIMELINE_BUCKET_MS = {TIMELINE_BUCKET_MS}\n"

RECORD_BODY = """
if redis.call('HEXISTS', KEYS[3], 'state') == 0 then return {0, 0, 0, 0, ''} end
add_active(KEYS[3], tonumber(ARGV[8] or '0'))
local requests = redis.call('HINCRBY', KEYS[3], 'requests', tonumber(ARGV[1]))
local failures = redis.call('HINCRBY', KEYS[3], 'failed_requests', tonumber(ARGV[2]))
local tally = {'calls', 'throttled', 'retries'}
for i = 1, 3 do
  if tonumber(ARGV[3 + i]) > 0 then redis.call('HINCRBY', KEYS[3], tally[i], ARGV[3 + i]) end
end
local goals = {}
for status in string.gmatch(ARGV[3], '%S+') do goals[status] = true end
local added, gained, failing = 0, {}, false
for line in string.gmatch(ARGV[7] or '', '[^\\n]+') do
  local list, status, refs, result = string.match(line, '^(%d+) (%S+) (%S*) (.*)$')
  local fresh = {}
  for ref in string.gmatch(refs, '%d+') do
    if redis.call('SETBIT', KEYS[1], tonumber(ref), 1) == 0 then fresh[#fresh + 1] = ref end
  end
  if #fresh > 0 then
    redis.call('HINCRBY', KEYS[2], status, #fresh)
    local results = KEYS[3 + tonumber(list)]
    redis.call('RPUSH', results, table.concat(fresh, ',') .. ' ' .. result)
    if not goals[status] then
      redis.call('SETBIT', failed_key, tonumber(string.match(results, '(%d+)$')), 1)
      failing = true
    end
    added = added + #fresh
    gained[status] = (gained[status] or 0) + #fresh
  end
end
local bucket = string.format('%d', math.floor(now / TIMELINE_BUCKET_MS))
local throttled = tonumber(ARGV[5])
if added > 0 or throttled > 0 then
  local timeline = timeline_key
  if added > 0 then redis.call('HINCRBY', timeline, 'r' .. bucket, added) end
  if throttled > 0 then redis.call('HINCRBY', timeline, 't' .. bucket, throttled) end
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl > 0 and redis.call('PTTL', timeline) == -1 then redis.call('PEXPIRE', timeline, ttl) end
end
if failing and redis.call('PTTL', failed_key) == -1 then
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl > 0 then redis.call('PEXPIRE', failed_key, ttl) end
end
local done, good = 0, 0
local counts = redis.call('HGETALL', KEYS[2])
for i = 1, #counts, 2 do
  local n = tonumber(counts[i + 1])
  done = done + n
  if goals[counts[i]] then good = good + n end
end
local total = tonumber(redis.call('HGET', KEYS[3], 'total') or '-1')
local finished = ''
if added > 0 and done >= total then
  local state = redis.call('HGET', KEYS[3], 'state')
  if state == 'queued' or state == 'running' then
    finished = 'completed'
    if good < done then finished = 'completed_with_failures' end
    redis.call('HSET', KEYS[3], 'state', finished, 'finished_at', now)
  end
end
local answer = {added, done, requests, failures, finished}
for status, n in pairs(gained) do
  answer[#answer + 1] = status
  answer[#answer + 1] = n
end
return answer
"""
RECORD_RESULTS = (
    NOW
    + ADD_ACTIVE
    + TIMELINE
    + "local timeline_key, failed_key = KEYS[#KEYS - 1], KEYS[#KEYS]\n"
    + RECORD_BODY
)

# ``cancel`` of a job: record a chunk's unsent rows ``cancelled`` at once and mark the chunk
# done, unless a live worker holds its lease (that worker sees the cancel within 0.25 s and
# records them itself) or it is done. Atomic with ACQUIRE_LEASE (worker/lua/leases.py): a worker
# that asks for the chunk after this finds it done, so each row still gets one result (the
# result script's ``final`` bits make sure of it anyway). Then RECORD_RESULTS as above.
# KEYS: as RECORD_RESULTS (the timeline and the failure index last), then leases, lease
# owners, done-chunks.
# ARGV: as RECORD_RESULTS (ms worked: 0), then the chunk's lease member and its number.
# Returns as RECORD_RESULTS, with 'busy' as the last item when a live worker holds the chunk.
CANCEL_UNSENT = (
    NOW
    + ADD_ACTIVE
    + TIMELINE
    + """
local leases, owners, done_chunks = KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS]
local timeline_key, failed_key = KEYS[#KEYS - 4], KEYS[#KEYS - 3]
if redis.call('HEXISTS', KEYS[3], 'state') == 0 then return {0, 0, 0, 0, ''} end
if redis.call('SISMEMBER', done_chunks, ARGV[10]) == 1 then return {0, 0, 0, 0, ''} end
local expires = redis.call('ZSCORE', leases, ARGV[9])
local owner = redis.call('HGET', owners, ARGV[9])
if owner and owner ~= '' and expires and tonumber(expires) > now then
  return {0, 0, 0, 0, 'busy'}
end
redis.call('SADD', done_chunks, ARGV[10])
"""
    + RECORD_BODY
)

# Keep what reads found for rows, the first observation of each row only (its bit in the
# ``observed`` bitmap): a chunk worked again after a crash between a backup read and its delete
# keeps the value from before the delete. KEYS: observed bitmap, the chunk's observed list.
# ARGV: ref, JSON value, ... Returns the refs observed before (their kept values are in the list).
OBSERVE = """
local refs, values, seen = {}, {}, {}
for i = 1, #ARGV, 2 do
  if redis.call('SETBIT', KEYS[1], tonumber(ARGV[i]), 1) == 0 then
    refs[#refs + 1] = ARGV[i]
    values[#values + 1] = ARGV[i + 1]
  else
    seen[#seen + 1] = ARGV[i]
  end
end
if #refs > 0 then
  redis.call('RPUSH', KEYS[2], table.concat(refs, ',') .. ' [' .. table.concat(values, ',') .. ']')
end
return seen
"""
