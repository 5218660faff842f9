"""Lua scripts: each is one atomic step on Redis time, so workers on many hosts agree.

One module per thing the scripts hold: ``rows`` (results, observations), ``leases`` (chunk
leases and the live-workers set) and ``jobs`` (a job's state and retention); ``clock`` is the
time they share. The shared rate limit's scripts are in ``worker.limits`` (``reserve``,
``throttle``). Each script says its KEYS, ARGV and what it returns.
"""
