"""A read-only Lua script of the job page: the rows of some chunks that did not end as the job
wished, grouped as the page shows them (``producer.store.page`` runs it)."""

from __future__ import annotations

# The rows of some chunks' results lists whose result is of another status than ARGV's, counted
# by group (status, and the error code, else the HTTP status, as ``producer.page.failures``
# groups them) with the first entries of each group. Each entry is "refs JSON" with the JSON an
# array [status, http, code, ...] (``worker.formats.decode_results``); a row's last entry wins,
# and only while its bit in ``final`` is set (a retry made it pending). Run here rather than
# read by the page, which spent a second parsing 500,000 rows' entries (redis-py's parser) to
# find 100 failed rows in them, then 0.3 s decoding the 100 chunks that held them: only the
# failing entries are decoded (cjson), and only the first of each group are sent back.
# Read-only; the chunks come from the job's failure index (``keys.failed_chunks``), or are all
# of them for a job recorded before it. 10 chunks of 100 requests a call blocked Redis 2 ms at
# most with 100 failed requests in 500,000 rows, 8 ms when every row failed (25 a call: 28 ms;
# ``python -m bench.page [--failed 125000]``).
# KEYS: the job's final bitmap, then the results lists. ARGV: the wished statuses (space
# separated), the rows a group lists at most.
# Returns {status, error, rows, {list, refs, JSON, list, refs, JSON, ...}} a group, in the
# order of the first entry of each: ``list`` is the (1-based) position of the results list
# among the lists, ``refs`` the entry's final rows whose last entry it is (comma separated);
# a group lists entries until it holds the rows asked for.
FAILED_ENTRIES = """
local wished, limit = {}, tonumber(ARGV[2])
for status in string.gmatch(ARGV[1], '%S+') do wished[status] = true end
local groups, order = {}, {}
local function add(list, refs, rows, text)
  local result = cjson.decode(text)
  local code, http, err = result[3], result[2], ''
  if type(code) == 'string' and code ~= '' then err = code
  elseif type(http) == 'number' and http ~= 0 then err = string.format('%d', http) end
  local group = groups[result[1] .. ' ' .. err]
  if not group then
    group = {result[1], err, 0, {}, 0}
    groups[result[1] .. ' ' .. err] = group
    order[#order + 1] = group
  end
  group[3] = group[3] + rows
  if group[5] < limit then
    group[5] = group[5] + rows
    local shown = group[4]
    shown[#shown + 1], shown[#shown + 2], shown[#shown + 3] = list, refs, text
  end
end
for i = 2, #KEYS do
  local entries = redis.call('LRANGE', KEYS[i], 0, -1)
  local first
  for n, entry in ipairs(entries) do
    if not wished[string.match(entry, '^%S* %["([^"]*)"')] then first = n break end
  end
  local seen, found = {}, {}
  for n = first and #entries or 0, first or 1, -1 do
    local refs, text = string.match(entries[n], '^(%S*) (.*)$')
    local other = not wished[string.match(text, '^%["([^"]*)"')]
    local kept = {}
    for ref in string.gmatch(refs, '%d+') do
      if not seen[ref] then
        seen[ref] = true
        if other and redis.call('GETBIT', KEYS[1], ref) == 1 then kept[#kept + 1] = ref end
      end
    end
    if #kept > 0 then found[#found + 1] = {table.concat(kept, ','), #kept, text} end
  end
  for n = #found, 1, -1 do add(i - 1, found[n][1], found[n][2], found[n][3]) end
end
local answer = {}
for _, group in ipairs(order) do answer[#answer + 1] = {group[1], group[2], group[3], group[4]} end
return answer
"""
