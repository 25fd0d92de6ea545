"""``statemill serve`` speaks AWS's JSON 1.0 protocol to real boto3 clients."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from servertools import serving


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(tmp_path_factory.mktemp("serve"))


def test_an_unknown_execution_is_execution_does_not_exist(server):
    with pytest.raises(ClientError) as caught:
        server.client().describe_execution(
            executionArn="arn:aws:states:us-east-1:000000000000:execution:nope:nope")
    assert caught.value.response["Error"]["Code"] == "ExecutionDoesNotExist"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
