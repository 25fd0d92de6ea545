"""Behind the API, executions survive what kills processes: a task token completed by another process, a
`statemill worker` SIGKILLed mid-task and replaced (the server on --no-worker), the server itself SIGKILLed and
restarted on the same database. Each execution still ends exactly once, as the API reports it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from enginetools import wait_for
from servertools import REGION, ServerProcess

ROLE = "arn:aws:iam::000000000000:role/statemill-test"
HANDLERS = '''
import json
import time
from pathlib import Path

HERE = Path(__file__).parent


def step(value, context):
    """Record the call, then block until the test drops a file named "release" next to this module."""
    with open(HERE / "calls.jsonl", "a") as calls:
        calls.write(json.dumps({"key": context.idempotency_key, "attempt": context.attempt}) + "\\n")
    while not (HERE / "release").exists():
        time.sleep(0.02)
    return {"stepped": value["n"] + 1, "zero": 0, "no": False, "empty": "", "none": None}


def hand_out(value):
    return {"handedOut": True}


HANDLERS = {"durable.step": step, "durable.hand_out": hand_out}
'''
STEP = {"StartAt": "Step", "States": {
    "Step": {"Type": "Task", "Resource": "durable.step", "ResultPath": "$.result", "Next": "After"},
    "After": {"Type": "Pass", "Parameters": {"n.$": "$.n", "stepped.$": "$.result.stepped"}, "End": True}}}
WAIT = {"StartAt": "Before", "States": {
    "Before": {"Type": "Pass", "Result": 0, "ResultPath": "$.before", "Next": "Pause"},
    "Pause": {"Type": "Wait", "Seconds": 2, "Next": "After"},
    "After": {"Type": "Pass", "Result": "", "ResultPath": "$.after", "End": True}}}
TOKEN = {"StartAt": "Ask", "States": {
    "Ask": {"Type": "Task", "Resource": "durable.hand_out.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"}, "ResultPath": "$.answer", "End": True}}}
# The second process: boto3 completing a token, as an application elsewhere would.
COMPLETE = textwrap.dedent('''
    import sys, boto3
    from botocore.config import Config
    url, region, token, output = sys.argv[1:]
    sfn = boto3.client("stepfunctions", endpoint_url=url, region_name=region, aws_access_key_id="other",
                       aws_secret_access_key="other", config=Config(retries={"max_attempts": 1}))
    sfn.send_task_success(taskToken=token, output=output)
''')


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "durable_handlers.py").write_text(HANDLERS)
    return tmp_path


def serve(folder: Path, db: str, *args: str) -> ServerProcess:
    return ServerProcess(folder, db, "--handlers", "durable_handlers", "-q", *args)


def worker(folder: Path, db: str) -> subprocess.Popen:
    """A `statemill worker` process with a 1 s lease (so a replacement reclaims a dead one's task quickly)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), *sys.path]))
    return subprocess.Popen([sys.executable, "-m", "statemill.cli.main", "worker", "--db", db, "--handlers",
                             "durable_handlers", "--lease", "1", "-q"], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    return process.wait(30)


def closed(sfn, arn: str, timeout: float = 60.0) -> dict:
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
                    timeout, f"{arn} to close")


def events(sfn, arn: str) -> list[dict]:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
    return [event for page in pages for event in page["events"]]


def assert_ended_once(sfn, arn: str) -> Counter:
    """The history of ``arn`` has gapless ids and every state entered once, the execution ended once."""
    found = events(sfn, arn)
    assert [e["id"] for e in found] == list(range(1, len(found) + 1))
    kinds = Counter(e["type"] for e in found)
    assert kinds["ExecutionSucceeded"] == 1 and sum(n for k, n in kinds.items() if k.startswith("Execution")) == 2
    entered = Counter(e["stateEnteredEventDetails"]["name"] for e in found if e["type"].endswith("StateEntered"))
    assert set(entered.values()) == {1}, entered
    return kinds


def create(sfn, name: str, definition: dict, type_: str = "STANDARD") -> str:
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE,
                                    type=type_)["stateMachineArn"]


def test_a_token_completed_by_another_process_resumes_the_execution(folder, db_url):
    server = serve(folder, db_url)
    try:
        sfn = server.client()
        arn = sfn.start_execution(stateMachineArn=create(sfn, "ask", TOKEN), input='{"n": 0}')["executionArn"]
        scheduled = wait_for(lambda: [e for e in events(sfn, arn) if e["type"] == "TaskSubmitted"], 60, "the hand-out")
        token = json.loads(next(e for e in events(sfn, arn) if e["type"] == "TaskScheduled")
                           ["taskScheduledEventDetails"]["parameters"])["token"]
        assert scheduled
        answer = json.dumps({"zero": 0, "no": False, "empty": "", "none": None})
        subprocess.run([sys.executable, "-c", COMPLETE, server.url, REGION, token, answer], check=True, timeout=60)
        found = closed(sfn, arn)
        assert found["status"] == "SUCCEEDED"
        assert json.loads(found["output"]) == {"n": 0, "answer": json.loads(answer)}
        assert_ended_once(sfn, arn)
    finally:
        assert server.stop() == 0, server.log.read_text()


def test_a_killed_worker_is_replaced_and_the_execution_ends_once(folder, db_url):
    server = serve(folder, db_url, "--no-worker")
    first = worker(folder, db_url)
    try:
        sfn = server.client()
        arn = sfn.start_execution(stateMachineArn=create(sfn, "step", STEP), name="step",
                                  input='{"n": 0}')["executionArn"]
        calls = folder / "calls.jsonl"
        wait_for(lambda: calls.exists() and calls.read_text().count("\n") == 1, 60, "the handler to start")
        assert stop(first, signal.SIGKILL) == -signal.SIGKILL
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        (folder / "release").touch()
        second = worker(folder, db_url)
        try:
            found = closed(sfn, arn)
        finally:
            assert stop(second) == 0, second.stderr.read().decode()
        assert found["status"] == "SUCCEEDED", found
        assert json.loads(found["output"]) == {"n": 0, "stepped": 1}
        kinds = assert_ended_once(sfn, arn)
        assert (kinds["TaskScheduled"], kinds["TaskSucceeded"]) == (1, 1)
        runs = [json.loads(line) for line in calls.read_text().splitlines()]
        assert len(runs) == 2 and runs[0]["key"] == runs[1]["key"]  # at least once, with one idempotency key
    finally:
        stop(first, signal.SIGKILL)
        assert server.stop() == 0, server.log.read_text()


def test_start_sync_on_a_server_without_workers_waits_for_an_outside_worker(folder, db_url):
    server = serve(folder, db_url, "--no-worker")
    outside = worker(folder, db_url)
    try:
        sfn = server.client()
        (folder / "release").touch()
        found = sfn.start_sync_execution(stateMachineArn=create(sfn, "quick", STEP, "EXPRESS"), input='{"n": 0}')
        assert (found["status"], json.loads(found["output"])) == ("SUCCEEDED", {"n": 0, "stepped": 1})
    finally:
        assert stop(outside) == 0
        assert server.stop() == 0, server.log.read_text()


def test_executions_continue_after_the_server_is_killed_and_restarted(folder, db_url):
    server = serve(folder, db_url)
    sfn = server.client()
    waiting = sfn.start_execution(stateMachineArn=create(sfn, "pause", WAIT), name="pause",
                                  input='{"zero": 0}')["executionArn"]
    asking = sfn.start_execution(stateMachineArn=create(sfn, "ask", TOKEN), name="ask")["executionArn"]
    wait_for(lambda: [e for e in events(sfn, waiting) if e["type"] == "WaitStateEntered"], 60, "the Wait")
    wait_for(lambda: [e for e in events(sfn, asking) if e["type"] == "TaskSubmitted"], 60, "the hand-out")
    token = json.loads(next(e for e in events(sfn, asking) if e["type"] == "TaskScheduled")
                       ["taskScheduledEventDetails"]["parameters"])["token"]
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL

    again = serve(folder, db_url)
    try:
        sfn = again.client()
        assert sfn.describe_execution(executionArn=asking)["status"] == "RUNNING"
        sfn.send_task_success(taskToken=token, output='""')
        paused, asked = closed(sfn, waiting), closed(sfn, asking)
        assert (paused["status"], json.loads(paused["output"])) == ("SUCCEEDED", {"zero": 0, "before": 0, "after": ""})
        assert (asked["status"], json.loads(asked["output"])) == ("SUCCEEDED", {"answer": ""})
        for arn in (waiting, asking):
            assert_ended_once(sfn, arn)
    finally:
        assert again.stop() == 0, again.log.read_text()


def test_concurrent_starts_of_one_name_make_one_execution(folder, db_url):
    server = serve(folder, db_url, "--no-worker")
    try:
        sfn = server.client()
        machine = create(sfn, "once", WAIT)
        clients = [server.client() for _ in range(8)]
        barrier = threading.Barrier(len(clients))

        def start(client):
            barrier.wait()
            return client.start_execution(stateMachineArn=machine, name="once", input='{"zero": 0}')

        with ThreadPoolExecutor(len(clients)) as pool:
            answers = list(pool.map(start, clients))
        assert len({(a["executionArn"], a["startDate"]) for a in answers}) == 1
        assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1
    finally:
        assert server.stop() == 0, server.log.read_text()
