"""A faithful IMS + IAM HTTP server (aiohttp) for tests, benchmarks and the demo."""
