"""Signed requests (AWS SigV4) to ``statemill serve`` with credentials, and serve's refusal to listen unauthenticated
beyond loopback."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from click.testing import CliRunner

from servertools import REGION, ServerProcess, serving
from statemill.cli.main import main as cli
from statemill.cli.listen import _loopback

KEY, SECRET = "AKIDSTATEMILL0", "s3cret/with+chars"
LIST = "AWSStepFunctions.ListStateMachines"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(tmp_path_factory.mktemp("auth"), "--access-key-id", KEY, "--secret-access-key", SECRET,
                       "--no-worker")


def error_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_a_request_signed_with_the_configured_credentials_is_answered(server):
    client = server.client(key=KEY, secret=SECRET)
    created = client.create_state_machine(name="signed", roleArn="arn:aws:iam::000000000000:role/r", definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 0, "End": True}}}))
    assert client.describe_state_machine(stateMachineArn=created["stateMachineArn"])["name"] == "signed"


@pytest.mark.parametrize("key, secret, error, status", [
    ("AKIDSOMEONEELSE", SECRET, "UnrecognizedClientException", 400),
    (KEY, "wrong-secret", "InvalidSignatureException", 400),
    (KEY.lower(), SECRET, "UnrecognizedClientException", 400),
    (KEY, "", "InvalidSignatureException", 400),
], ids=["wrong-key", "wrong-secret", "key-in-other-case", "empty-secret"])
def test_wrong_credentials_are_refused_as_aws_refuses_them(server, key, secret, error, status):
    found = error_of(lambda: server.client(key=key, secret=secret).list_state_machines())
    assert found[:2] == (error, status)


def test_an_unsigned_request_is_missing_authentication_token(server):
    client = server.client(signature_version=UNSIGNED)
    assert error_of(client.list_state_machines)[:2] == ("MissingAuthenticationToken", 403)


def signed(server, body: bytes, stamp: datetime, *, secret: str = SECRET, sent: bytes | None = None):
    """POST ``sent`` (default ``body``) with a SigV4 signature of ``body`` made at ``stamp``; (status, JSON)."""
    amz_date = stamp.strftime("%Y%m%dT%H%M%SZ")
    request = AWSRequest(method="POST", url=server.url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": LIST, "X-Amz-Date": amz_date,
        "Host": f"127.0.0.1:{server.port}"})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(KEY, secret), "states", REGION)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    headers = dict(request.headers.items())
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders="
                                f"{signer.signed_headers(signer.headers_to_sign(request))}, Signature={signature}")
    http = urllib.request.Request(server.url + "/", data=body if sent is None else sent, headers=headers,
                                  method="POST")
    try:
        with urllib.request.urlopen(http, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_hand_signed_request_of_now_is_answered(server):
    status, body = signed(server, b"{}", datetime.now(timezone.utc))
    assert status == 200 and "stateMachines" in body, body


@pytest.mark.parametrize("offset, prefix", [(-360, "Signature expired: "), (-3600, "Signature expired: "),
                                            (360, "Signature not yet current: ")],
                         ids=["6-minutes-old", "an-hour-old", "6-minutes-ahead"])
def test_a_date_more_than_5_minutes_off_is_invalid_signature_with_aws_message(server, offset, prefix):
    stamp = datetime.fromtimestamp(time.time() + offset, timezone.utc)
    status, body = signed(server, b"{}", stamp)
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert body["message"].startswith(prefix + stamp.strftime("%Y%m%dT%H%M%SZ"))
    assert body["message"].endswith(" - 5 min.)" if offset < 0 else " + 5 min.)")


def test_a_date_within_5_minutes_is_accepted(server):
    status, _ = signed(server, b"{}", datetime.fromtimestamp(time.time() - 240, timezone.utc))
    assert status == 200


def test_a_body_changed_after_signing_is_invalid_signature(server):
    status, body = signed(server, b"{}", datetime.now(timezone.utc), sent=b'{"maxResults": 1}')
    assert (status, body["__type"]) == (400, "InvalidSignatureException")


# -------------------------------------------------------------------------------------------- serve's refusals
@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "refusing to serve unauthenticated on 0.0.0.0"),
    (["--host", "192.0.2.1"], "refusing to serve unauthenticated on 192.0.2.1"),
    (["--access-key-id", KEY], "--access-key-id and --secret-access-key go together"),
    (["--secret-access-key", SECRET], "--access-key-id and --secret-access-key go together"),
], ids=["any-address", "a-lan-address", "key-without-secret", "secret-without-key"])
def test_serve_refuses_to_listen_unauthenticated_beyond_loopback(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["serve", "--db", f"sqlite:///{tmp_path}/s.db", *args],
                                env={"STATEMILL_ACCESS_KEY_ID": "", "STATEMILL_SECRET_ACCESS_KEY": ""})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "s.db").exists()  # refused before the database was touched


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("10.0.0.1", False), ("example.com", False)])
def test_which_hosts_count_as_loopback(host, loopback):
    assert _loopback(host) is loopback


@pytest.mark.parametrize("args, key, secret", [
    (["--allow-unauthenticated"], "anyone", "anything"),
    (["--access-key-id", KEY, "--secret-access-key", SECRET], KEY, SECRET),
], ids=["allowed-unauthenticated", "with-credentials"])
def test_serve_listens_beyond_loopback_when_told_how_to_authenticate(tmp_path, args, key, secret):
    process = ServerProcess(tmp_path, f"sqlite:///{tmp_path}/s.db", "--host", "0.0.0.0", "--no-worker", *args)
    try:
        assert process.client(key=key, secret=secret).list_state_machines()["stateMachines"] == []
        if "--allow-unauthenticated" not in args:
            assert error_of(process.client(key=key, secret="wrong").list_state_machines)[0] == \
                "InvalidSignatureException"
    finally:
        assert process.stop() == 0, process.log.read_text()
