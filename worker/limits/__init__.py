"""The shared rate limit: the schedule in Redis, its scripts and tuning, backoff and retries."""
