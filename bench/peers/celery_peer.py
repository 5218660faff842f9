"""Peer 3: Celery with one task per image calling ``requests``, Celery's own ``rate_limit`` and
``autoretry_for``; requests signed with the official SDK's signer.

    celery -A bench.peers.celery_peer worker -c 2          (the workers)
    python -m bench.peers.celery_peer CSV                  (queues one task per image, waits)

Settings come from the environment: REDIS_URL, PEER_ENDPOINT, PEER_PROJECT_ID, PEER_RATE_LIMIT
(Celery's syntax, e.g. "100/s"; empty for none), HUAWEICLOUD_SDK_AK/SK.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import redis
import requests
from celery import Celery
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from bench.peers.common import print_summary, read_images

app = Celery("peer", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_prefetch_multiplier=4,
    task_acks_late=True,
)
DONE = "peer:done"
FAILED = "peer:failed_rows"
session = requests.Session()


class Throttled(Exception):
    """A 429 or 5xx: let autoretry_for try again."""


def _signed(image_id: str, tags: list[list[str]]) -> tuple[str, dict[str, str], bytes]:
    endpoint, project = os.environ["PEER_ENDPOINT"], os.environ["PEER_PROJECT_ID"]
    host = endpoint.split("://", 1)[1]
    path = f"/v1/{project}/cloudimages/{image_id}/tags/delete"
    body = json.dumps({"tags": [{"key": k, "value": v} for k, v in tags]})
    request = SdkRequest(
        method="DELETE",
        schema="http",
        host=host,
        resource_path=path,
        query_params=[],
        header_params={"Content-Type": "application/json"},
        body=body,
    )
    creds = BasicCredentials(
        os.environ["HUAWEICLOUD_SDK_AK"], os.environ["HUAWEICLOUD_SDK_SK"], project
    )
    Signer(creds).sign(request)
    return endpoint + path, {k: str(v) for k, v in request.header_params.items()}, body.encode()


def _finish(failed_rows: int) -> None:
    client = redis.Redis.from_url(app.conf.broker_url)
    client.incrby(FAILED, failed_rows)
    client.incr(DONE)


@app.task(
    name="peer.delete_image",  # the same name whether imported or run as __main__
    bind=True,
    rate_limit=os.environ.get("PEER_RATE_LIMIT") or None,
    autoretry_for=(Throttled, requests.RequestException),
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=8,
)
def delete_image(self: Any, image_id: str, tags: list[list[str]]) -> None:
    try:
        url, headers, body = _signed(image_id, tags)
        response = session.delete(url, data=body, headers=headers, timeout=30)
        if response.status_code == 429 or response.status_code >= 500:
            raise Throttled(str(response.status_code))
        _finish(0 if response.status_code == 204 else len(tags))
    except (Throttled, requests.RequestException):
        if self.request.retries >= self.max_retries:
            _finish(len(tags))
        raise


def main() -> None:
    images = read_images(sys.argv[1])
    client = redis.Redis.from_url(app.conf.broker_url)
    client.delete(DONE, FAILED)
    for image_id, tags in images:
        delete_image.delay(image_id, [list(t) for t in tags])
    while int(client.get(DONE) or 0) < len(images):
        time.sleep(0.2)
    failed = int(client.get(FAILED) or 0)
    print_summary(images=len(images), failed_rows=failed, failed_images=-1)


if __name__ == "__main__":
    main()
