"""Peer 2: the official SDK in a 16-thread pool, with the SDK's own retry turned on.

The SDK's opt-in retry is for throttling: retry on 429 with its random-jitter backoff, up to
five times. One client per thread (the SDK's client is not documented as thread-safe).

    python -m bench.peers.sdk_threads CSV ENDPOINT PROJECT_ID
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkcore.retry.backoff_strategy import BackoffStrategies

from bench.peers.common import print_summary, read_images
from bench.peers.sdk_loop import make_client, request_for

THREADS = 16
local = threading.local()


def throttled(response: object, exception: Exception | None) -> bool:
    return getattr(exception, "status_code", None) == 429


def delete(args: tuple[str, str, str, list[tuple[str, str]]]) -> int:
    endpoint, project_id, image_id, tags = args
    if not hasattr(local, "client"):
        local.client = make_client(endpoint, project_id)
    try:
        local.client.batch_delete_tags_invoker(request_for(image_id, tags)).with_retry(
            retry_condition=throttled,
            max_retries=5,
            backoff_strategy=BackoffStrategies.RANDOM_JITTER,
        ).invoke()
    except SdkException:
        return len(tags)
    return 0


def main() -> None:
    path, endpoint, project_id = sys.argv[1:4]
    images = read_images(path)
    with ThreadPoolExecutor(THREADS) as pool:
        failures = list(pool.map(delete, [(endpoint, project_id, i, t) for i, t in images]))
    print_summary(
        images=len(images), failed_rows=sum(failures), failed_images=sum(1 for f in failures if f)
    )


if __name__ == "__main__":
    main()
