"""Peer 1: the official SDK (huaweicloudsdkims batch_delete_tags) in a plain sequential loop.

python -m bench.peers.sdk_loop CSV ENDPOINT PROJECT_ID   (AK/SK from the environment)
"""

from __future__ import annotations

import os
import sys

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkims.v2 import (
    BatchDeleteTagsRequest,
    BatchDeleteTagsRequestBody,
    ImsClient,
    ResourceTag,
)

from bench.peers.common import print_summary, read_images


def make_client(endpoint: str, project_id: str) -> ImsClient:
    creds = BasicCredentials(
        os.environ["HUAWEICLOUD_SDK_AK"], os.environ["HUAWEICLOUD_SDK_SK"], project_id
    )
    return ImsClient.new_builder().with_credentials(creds).with_endpoint(endpoint).build()


def request_for(image_id: str, tags: list[tuple[str, str]]) -> BatchDeleteTagsRequest:
    body = BatchDeleteTagsRequestBody(tags=[ResourceTag(key=k, value=v) for k, v in tags])
    return BatchDeleteTagsRequest(image_id=image_id, body=body)


def main() -> None:
    path, endpoint, project_id = sys.argv[1:4]
    client = make_client(endpoint, project_id)
    images = read_images(path)
    failed_rows = failed_images = 0
    for image_id, tags in images:
        try:
            client.batch_delete_tags(request_for(image_id, tags))
        except SdkException:
            failed_rows += len(tags)
            failed_images += 1
    print_summary(images=len(images), failed_rows=failed_rows, failed_images=failed_images)


if __name__ == "__main__":
    main()
