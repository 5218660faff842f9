"""The workers' side: IMS client, auth, rate limits, retries, results store and Celery tasks."""
