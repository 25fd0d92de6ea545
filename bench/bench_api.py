"""The Step Functions API over HTTP (``statemill serve``) against the in-process ``Client``, in the same run.

- StartExecution and DescribeExecution per second through boto3 with 1 and 8 client threads (one boto3 client
  per thread), next to ``Client.start`` / ``Client.describe`` on the same kind of SQLite file with 1 and 8 threads.
  The server runs with --no-worker here, so nothing but the API touches the database.
- The HTTP overhead per call: the p50 latency of a boto3 call minus the p50 of the same Client call (one thread);
  and the same for a bare HTTP/1.1 request on a kept-alive connection (what the server costs without boto3's own
  request building, signing and parsing).
- End to end: StartExecution, then DescribeExecution every millisecond until SUCCEEDED, for a 3-state Pass machine
  on a server running its worker in-process; and one StartSyncExecution call on the EXPRESS twin of that machine.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from _common import Result

THREE = {"StartAt": "One", "States": {
    "One": {"Type": "Pass", "Result": 0, "ResultPath": "$.one", "Next": "Two"},
    "Two": {"Type": "Pass", "Result": False, "ResultPath": "$.two", "Next": "Three"},
    "Three": {"Type": "Pass", "Result": "", "ResultPath": "$.three", "End": True}}}
ROLE = "arn:aws:iam::000000000000:role/bench"


class Serve:
    """A ``statemill serve`` subprocess on a free port of 127.0.0.1 (stopped with SIGTERM by ``close``)."""

    def __init__(self, db: str, *args: str):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "statemill.cli.main", "serve", "--port",
                                         str(self.port), "--db", db, "-q", *args],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"statemill serve exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("statemill serve did not answer within 60 s") from None
                time.sleep(0.05)

    def client(self):
        import boto3
        from botocore.config import Config
        return boto3.client("stepfunctions", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="bench", aws_secret_access_key="bench",
                            config=Config(retries={"max_attempts": 1}, inject_host_prefix=False,
                                          max_pool_connections=16))

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _latencies(call, count: int) -> list[float]:
    found = []
    for i in range(count):
        t0 = time.perf_counter()
        call(i)
        found.append(time.perf_counter() - t0)
    return found


def _threaded_rate(make_call, threads: int, per_thread: int) -> float:
    """Calls per second of ``threads`` threads, each making ``per_thread`` calls with its own ``make_call()``."""
    calls = [make_call(t) for t in range(threads)]
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def loop(call) -> None:
        barrier.wait()
        try:
            for i in range(per_thread):
                call(i)
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)

    workers = [threading.Thread(target=loop, args=(c,)) for c in calls]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return threads * per_thread / elapsed


def _p50_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


def _raw_describe(port: int, arn: str):
    """DescribeExecution as a bare HTTP request on one kept-alive connection (no signature: none is configured)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"executionArn": arn}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.DescribeExecution"}

    def call(_i: int) -> None:
        conn.request("POST", "/", body, headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"DescribeExecution answered {answer.status}")
    return call


def run(ctx) -> None:
    from statemill.engine import Client

    count = ctx.pick(400, 60)
    per_thread = ctx.pick(100, 15)
    api_db = f"sqlite:///{ctx.tmp / 'api.db'}"
    server = Serve(api_db, "--no-worker")
    try:
        sfn = server.client()
        machine = sfn.create_state_machine(name="three", definition=json.dumps(THREE),
                                           roleArn=ROLE)["stateMachineArn"]
        local = Client(api_db)  # the server's own database and machine, so both sides write the same file
        sfn.start_execution(stateMachineArn=machine)  # warm both paths up
        local.start("three")

        # StartExecution
        boto_start = _latencies(lambda i: sfn.start_execution(stateMachineArn=machine), count)
        local_start = _latencies(lambda i: local.start("three"), count)
        boto_start8 = _threaded_rate(lambda t: (lambda c: lambda i: c.start_execution(stateMachineArn=machine))(
            server.client()), 8, per_thread)
        local_start8 = _threaded_rate(lambda t: lambda i: local.start("three"), 8, per_thread)

        # DescribeExecution (of one execution, closed or not: the same row read)
        arn = sfn.start_execution(stateMachineArn=machine, name="described")["executionArn"]
        boto_describe = _latencies(lambda i: sfn.describe_execution(executionArn=arn), count)
        local_describe = _latencies(lambda i: local.describe(arn), count)
        raw_describe = _latencies(_raw_describe(server.port, arn), count)
        boto_describe8 = _threaded_rate(lambda t: (lambda c: lambda i: c.describe_execution(executionArn=arn))(
            server.client()), 8, per_thread)
        local_describe8 = _threaded_rate(lambda t: lambda i: local.describe(arn), 8, per_thread)
        local.db.dispose()
    finally:
        server.close()

    group = "api"
    rate = lambda values: len(values) / sum(values)  # noqa: E731
    add = ctx.add
    add(Result("api.client_start1", group, "Client.start(), 1 thread", rate(local_start), "/s",
               short="Client.start x1", note="in this process, on the server's SQLite file"))
    add(Result("api.boto_start1", group, "boto3 start_execution, 1 thread", rate(boto_start), "/s",
               against=("api.client_start1",), short="boto3 start x1"))
    add(Result("api.client_start8", group, "Client.start(), 8 threads", local_start8, "/s", short="Client.start x8"))
    add(Result("api.boto_start8", group, "boto3 start_execution, 8 threads", boto_start8, "/s",
               against=("api.client_start8", "api.boto_start1"), note="one boto3 client per thread"))
    add(Result("api.client_describe1", group, "Client.describe(), 1 thread", rate(local_describe), "/s",
               short="Client.describe x1"))
    add(Result("api.boto_describe1", group, "boto3 describe_execution, 1 thread", rate(boto_describe), "/s",
               against=("api.client_describe1",), short="boto3 describe x1"))
    add(Result("api.client_describe8", group, "Client.describe(), 8 threads", local_describe8, "/s",
               short="Client.describe x8"))
    add(Result("api.boto_describe8", group, "boto3 describe_execution, 8 threads", boto_describe8, "/s",
               against=("api.client_describe8", "api.boto_describe1")))
    add(Result("api.overhead_start", group, "HTTP overhead per StartExecution, p50",
               _p50_ms(boto_start) - _p50_ms(local_start), "ms", higher_is_better=False,
               note=f"boto3 p50 {_p50_ms(boto_start):.2f} ms - Client p50 {_p50_ms(local_start):.2f} ms"))
    add(Result("api.overhead_describe", group, "HTTP overhead per DescribeExecution, p50",
               _p50_ms(boto_describe) - _p50_ms(local_describe), "ms", higher_is_better=False,
               note=f"boto3 p50 {_p50_ms(boto_describe):.2f} ms - Client p50 {_p50_ms(local_describe):.2f} ms; "
                    "aim: under 2 ms"))
    add(Result("api.overhead_raw", group, "  of which the server (bare HTTP request), p50",
               _p50_ms(raw_describe) - _p50_ms(local_describe), "ms", higher_is_better=False,
               note=f"http.client p50 {_p50_ms(raw_describe):.2f} ms, kept-alive connection, no boto3"))
    _end_to_end(ctx)


def _end_to_end(ctx) -> None:
    rounds = ctx.pick(30, 8)
    server = Serve(f"sqlite:///{ctx.tmp / 'api-e2e.db'}")
    try:
        sfn = server.client()
        machine = sfn.create_state_machine(name="three", definition=json.dumps(THREE),
                                           roleArn=ROLE)["stateMachineArn"]
        express = sfn.create_state_machine(name="three-express", definition=json.dumps(THREE), roleArn=ROLE,
                                           type="EXPRESS")["stateMachineArn"]
        polled = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            arn = sfn.start_execution(stateMachineArn=machine, input='{"zero": 0}')["executionArn"]
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                time.sleep(0.001)
            polled.append(time.perf_counter() - t0)
        synced = _latencies(lambda i: sfn.start_sync_execution(stateMachineArn=express, input='{"zero": 0}'), rounds)
    finally:
        server.close()
    ctx.add(Result("api.e2e", "api", "StartExecution -> SUCCEEDED, 3 Pass states, p50", _p50_ms(polled), "ms",
                   higher_is_better=False, note=f"DescribeExecution polled every 1 ms; max {1000 * max(polled):.0f} "
                   f"ms; in-process worker (its idle poll is 0.25 s on SQLite)"))
    ctx.add(Result("api.e2e_sync", "api", "StartSyncExecution, same machine as EXPRESS, p50", _p50_ms(synced), "ms",
                   higher_is_better=False, against=("api.e2e",), note=f"max {1000 * max(synced):.0f} ms"))


BENCHMARKS = {"api": ("statemill serve: boto3 StartExecution/DescribeExecution vs the in-process Client; "
                      "HTTP overhead; StartExecution to SUCCEEDED", run)}
