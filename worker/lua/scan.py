"""A read-only Lua script of the job page: which chunks hold results of some other status than
the job's goals (``producer.store.page`` runs it)."""

from __future__ import annotations

# Which of some chunks' results lists hold an entry whose status is not one of ARGV's: each
# entry is "refs JSON" with the JSON an array starting with the status
# (``worker.formats.decode_results``). Run here rather than read by the page, which spent a
# second parsing 500,000 rows' entries (redis-py's parser) to find 100 failed rows in them.
# Read-only; 50 chunks of 100 requests a call blocked Redis for 5.5 ms at most
# (``python -m bench.page``).
# KEYS: the results lists. ARGV: the wished statuses (space separated).
# Returns the (1-based) positions in KEYS of the lists with an entry of another status.
CHUNKS_WITH_OTHER_STATUS = """
local wished = {}
for status in string.gmatch(ARGV[1], '%S+') do wished[status] = true end
local found = {}
for i, key in ipairs(KEYS) do
  for _, entry in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if not wished[string.match(entry, '^%S* %["([^"]*)"')] then
      found[#found + 1] = i
      break
    end
  end
end
return found
"""
