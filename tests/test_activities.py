"""Activities through boto3 against a real ``statemill serve``: the activity actions' shapes, tags, and Task
states on an activity ARN served to pollers in other processes (GetActivityTask, SendTask*), with their history
events, heartbeat and timeout deadlines, a poller killed holding a task, and the long poll's empty answer."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from botocore.exceptions import ClientError

from servertools import REGION, serving

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/statemill-test"
POLL = 1.0  # the server's long-poll length in these tests (AWS: 60 s)
DATA = {"zero": 0, "no": False, "empty": "", "nothing": None, "list": [0, False, "", None]}
# A worker in another process: polls once, then answers as told ("success", "failure", "hold": keep the task and
# wait to be killed), printing the input it got.
WORKER = '''
import json, sys, time
import boto3
from botocore.config import Config
url, arn, name, answer = sys.argv[1:5]
sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                   aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}, read_timeout=70))
while True:
    task = sfn.get_activity_task(activityArn=arn, workerName=name)
    if task.get("taskToken"):
        break
print(json.dumps({"input": json.loads(task["input"]), "token": task["taskToken"]}), flush=True)
if answer == "success":
    sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"got": json.loads(task["input"]), "zero": 0}))
elif answer == "failure":
    sfn.send_task_failure(taskToken=task["taskToken"], error="Custom.Refused", cause="")
else:
    time.sleep(3600)
'''


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-activities")
    (folder / "activity_worker.py").write_text(WORKER)
    db = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    yield from serving(folder, "-q", db=db, env={"STATEMILL_ACTIVITY_POLL_SECONDS": str(POLL)})


_names = iter(range(10**6))


@pytest.fixture
def activity(sfn):
    """A new activity's ARN."""
    return sfn.create_activity(name=f"act-{next(_names)}")["activityArn"]


def machine(sfn, task: dict, **extra) -> str:
    definition = {"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "ResultPath": "$.answer", "End": True, **task},
        **extra}}
    return sfn.create_state_machine(name=f"m{next(_names)}", definition=json.dumps(definition),
                                    roleArn=ROLE)["stateMachineArn"]


def start(sfn, task: dict, **extra) -> str:
    return sfn.start_execution(stateMachineArn=machine(sfn, task, **extra), input=json.dumps(DATA))["executionArn"]


def worker(server, arn: str, name: str, answer: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(server.folder / "activity_worker.py"), server.url, arn, name, answer],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)


def until_closed(sfn, arn: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while (found := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still RUNNING after {timeout} s"
        time.sleep(0.05)
    return found


def events(sfn, arn: str) -> list[dict]:
    return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def activity_events(sfn, arn: str) -> list[tuple[str, dict]]:
    """(type, details) of the history's Activity* events."""
    found = []
    for event in events(sfn, arn):
        if event["type"].startswith("Activity"):
            key = event["type"][0].lower() + event["type"][1:] + "EventDetails"
            found.append((event["type"], event.get(key, {})))
    return found


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


# -- the activity actions
def test_create_answers_the_arn_and_is_idempotent_by_name(sfn):
    first = sfn.create_activity(name="idempotent")
    again = sfn.create_activity(name="idempotent", tags=[{"key": "ignored", "value": ""}])
    assert first["activityArn"] == f"arn:aws:states:{REGION}:{ACCOUNT}:activity:idempotent"
    assert again["creationDate"] == first["creationDate"]
    assert sfn.list_tags_for_resource(resourceArn=first["activityArn"])["tags"] == []


def test_describe_answers_name_and_creation_date(sfn, activity):
    found = sfn.describe_activity(activityArn=activity)
    assert found["activityArn"] == activity and found["name"] == activity.rsplit(":", 1)[1]
    assert found["creationDate"].timestamp() == pytest.approx(time.time(), abs=60)


@pytest.mark.parametrize("name", ["has space", "a" * 81, "semi;colon", "new\nline"])
def test_create_refuses_a_name_aws_refuses(server, name):
    with pytest.raises(ClientError) as excinfo:
        server.client(parameter_validation=False).create_activity(name=name)
    assert code(excinfo) == "InvalidName"


def test_list_pages_through_every_activity(sfn):
    made = {sfn.create_activity(name=f"listed-{i}")["activityArn"] for i in range(3)}
    pages = list(sfn.get_paginator("list_activities").paginate(PaginationConfig={"PageSize": 1}))
    listed = [a["activityArn"] for page in pages for a in page["activities"]]
    assert made <= set(listed) and len(listed) == len(set(listed))
    assert all(len(page["activities"]) == 1 for page in pages)


def test_delete_removes_the_activity_and_describe_says_so(sfn, activity):
    sfn.delete_activity(activityArn=activity)
    with pytest.raises(ClientError) as excinfo:
        sfn.describe_activity(activityArn=activity)
    assert code(excinfo) == "ActivityDoesNotExist"
    assert activity not in [a["activityArn"] for a in sfn.list_activities(maxResults=1000)["activities"]]
    sfn.delete_activity(activityArn=activity)  # deleting again answers, as AWS does


@pytest.mark.parametrize("arn, error", [
    (f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m", "InvalidArn"),
    ("not-an-arn", "InvalidArn"),
    (f"arn:aws:states:{REGION}:{ACCOUNT}:activity:never-created", "ActivityDoesNotExist"),
    (f"arn:aws:states:eu-west-1:{ACCOUNT}:activity:other-region", "ActivityDoesNotExist"),
])
def test_get_activity_task_names_a_bad_arn(sfn, arn, error):
    with pytest.raises(ClientError) as excinfo:
        sfn.get_activity_task(activityArn=arn)
    assert code(excinfo) == error


def test_activities_take_tags(sfn, activity):
    sfn.tag_resource(resourceArn=activity, tags=[{"key": "team", "value": ""}, {"key": "zero", "value": "0"}])
    sfn.untag_resource(resourceArn=activity, tagKeys=["team"])
    assert sfn.list_tags_for_resource(resourceArn=activity)["tags"] == [{"key": "zero", "value": "0"}]
    sfn.delete_activity(activityArn=activity)
    with pytest.raises(ClientError) as excinfo:
        sfn.list_tags_for_resource(resourceArn=activity)
    assert code(excinfo) == "ResourceNotFound"


# -- the long poll
def test_long_poll_answers_no_token_after_its_wait_without_blocking_other_requests(server, sfn, activity):
    waited = {}

    def poll():
        began = time.monotonic()
        waited["answer"] = server.client().get_activity_task(activityArn=activity)
        waited["seconds"] = time.monotonic() - began

    pollers = [threading.Thread(target=poll) for _ in range(1)]
    for thread in pollers:
        thread.start()
    time.sleep(0.2)
    began = time.monotonic()
    sfn.list_activities()
    other = time.monotonic() - began
    for thread in pollers:
        thread.join()
    assert "taskToken" not in waited["answer"]
    assert waited["seconds"] >= POLL * 0.9
    assert other < POLL * 0.9  # answered while the poll was waiting, not after it


def test_long_poll_answers_a_task_scheduled_while_it_waits(server, sfn, activity):
    got = {}
    thread = threading.Thread(target=lambda: got.update(server.client().get_activity_task(activityArn=activity,
                                                                                           workerName="waiting")))
    thread.start()
    time.sleep(0.1)
    execution = start(sfn, {"Resource": activity})
    thread.join()
    assert json.loads(got["input"]) == DATA
    sfn.send_task_success(taskToken=got["taskToken"], output="0")
    assert json.loads(until_closed(sfn, execution)["output"]) == {**DATA, "answer": 0}


# -- tasks served to workers in other processes
def test_a_worker_process_polls_and_answers(server, sfn, activity):
    execution = start(sfn, {"Resource": activity, "Parameters": {"zero": 0, "no.$": "$.no"},
                            "TimeoutSeconds": 60, "HeartbeatSeconds": 30})
    process = worker(server, activity, "worker-0", "success")
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert json.loads(out)["input"] == {"zero": 0, "no": False}
    found = until_closed(sfn, execution)
    assert found["status"] == "SUCCEEDED"
    assert json.loads(found["output"])["answer"] == {"got": {"zero": 0, "no": False}, "zero": 0}
    assert activity_events(sfn, execution) == [
        ("ActivityScheduled", {"resource": activity, "input": '{"zero":0,"no":false}',
                               "inputDetails": {"truncated": False}, "timeoutInSeconds": 60,
                               "heartbeatInSeconds": 30}),
        ("ActivityStarted", {"workerName": "worker-0"}),
        ("ActivitySucceeded", {"output": '{"got":{"zero":0,"no":false},"zero":0}',
                               "outputDetails": {"truncated": False}})]
    history = events(sfn, execution)
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    assert all(e["previousEventId"] == e["id"] - 1 for e in history[2:])  # ActivityStarted is chained in


def test_a_failure_goes_through_catch(server, sfn, activity):
    execution = start(sfn, {"Resource": activity, "Catch": [{"ErrorEquals": ["Custom.Refused"],
                                                             "ResultPath": "$.refusal", "Next": "Refused"}]},
                      Refused={"Type": "Pass", "End": True})
    process = worker(server, activity, "refuser", "failure")
    process.communicate(timeout=30)
    found = until_closed(sfn, execution)
    assert found["status"] == "SUCCEEDED"
    assert json.loads(found["output"])["refusal"] == {"Error": "Custom.Refused", "Cause": ""}
    assert [t for t, _ in activity_events(sfn, execution)] == ["ActivityScheduled", "ActivityStarted",
                                                              "ActivityFailed"]
    assert activity_events(sfn, execution)[-1][1] == {"error": "Custom.Refused", "cause": ""}


def test_a_task_nobody_takes_times_out_by_timeout_seconds(sfn, activity):
    execution = start(sfn, {"Resource": activity, "TimeoutSeconds": 1})
    found = until_closed(sfn, execution)
    assert found["status"] == "FAILED" and found["error"] == "States.Timeout"
    assert [t for t, _ in activity_events(sfn, execution)] == ["ActivityScheduled", "ActivityTimedOut"]

@pytest.mark.parametrize("gone", ["never created", "deleted"])
def test_a_task_on_an_activity_that_does_not_exist_fails_with_activity_schedule_failed(sfn, gone):
    """AWS writes ActivityScheduleFailed and fails with States.Runtime, which neither Retry nor a Catch of
    States.ALL handles: the execution fails and no poller is ever offered the task."""
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:activity:missing-{next(_names)}"
    if gone == "deleted":
        arn = sfn.create_activity(name=arn.rsplit(":", 1)[1])["activityArn"]
        sfn.delete_activity(activityArn=arn)
    execution = start(sfn, {"Resource": arn, "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
                            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
                      Caught={"Type": "Pass", "End": True})
    found = until_closed(sfn, execution)
    assert found["status"] == "FAILED" and found["error"] == "States.Runtime"
    assert f"Activity Does Not Exist: '{arn}'" in found["cause"]
    assert activity_events(sfn, execution) == [
        ("ActivityScheduleFailed", {"error": "States.Runtime", "cause": f"Activity Does Not Exist: '{arn}'"})]
    assert [e["type"] for e in events(sfn, execution)] == ["ExecutionStarted", "TaskStateEntered",
                                                           "ActivityScheduleFailed", "ExecutionFailed"]



def test_a_poller_killed_holding_a_task_loses_nothing(server, sfn, activity):
    """AWS hands a task out once: the dead poller's attempt times out by HeartbeatSeconds, Retry schedules a
    new attempt with a new token, another poller finishes it; the dead poller's token is refused."""
    execution = start(sfn, {"Resource": activity, "HeartbeatSeconds": 1,
                            "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout"], "IntervalSeconds": 1,
                                       "MaxAttempts": 1}]})
    doomed = worker(server, activity, "doomed", "hold")
    first = json.loads(doomed.stdout.readline())
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    survivor = worker(server, activity, "survivor", "success")
    second = json.loads(survivor.communicate(timeout=30)[0])
    assert second["token"] != first["token"] and second["input"] == first["input"] == DATA
    found = until_closed(sfn, execution)
    assert found["status"] == "SUCCEEDED"
    assert [(t, d.get("workerName", d.get("error"))) for t, d in activity_events(sfn, execution)] == [
        ("ActivityScheduled", None), ("ActivityStarted", "doomed"), ("ActivityTimedOut", "States.HeartbeatTimeout"),
        ("ActivityScheduled", None), ("ActivityStarted", "survivor"), ("ActivitySucceeded", None)]
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken=first["token"], output="{}")
    assert code(excinfo) == "TaskTimedOut"


def test_heartbeats_keep_a_taken_task_alive(server, sfn, activity):
    execution = start(sfn, {"Resource": activity, "HeartbeatSeconds": 1})
    task = sfn.get_activity_task(activityArn=activity)
    for _ in range(3):
        time.sleep(0.5)
        sfn.send_task_heartbeat(taskToken=task["taskToken"])
    sfn.send_task_success(taskToken=task["taskToken"], output='""')
    found = until_closed(sfn, execution)
    assert found["status"] == "SUCCEEDED" and json.loads(found["output"])["answer"] == ""


# -- the CLI
def cli(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "statemill.cli.main", *args, "--db", db], capture_output=True,
                          text=True, timeout=60)


def test_cli_creates_lists_polls_and_deletes(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    created = cli("activity", "create", "cli-0", "--json", db=db)
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["activityArn"]
    assert arn.endswith(":activity:cli-0")
    assert [a["activityArn"] for a in json.loads(cli("activity", "list", "--json", db=db).stdout)["activities"]] == [arn]
    empty = cli("activity", "poll", "cli-0", "--wait", "0.2", db=db)
    assert (empty.returncode, empty.stdout) == (1, "") and "NoTask" in empty.stderr
    assert cli("activity", "delete", arn, db=db).returncode == 0
    assert json.loads(cli("activity", "list", "--json", db=db).stdout)["activities"] == []
    missing = cli("activity", "poll", "cli-0", "--wait", "0", db=db)
    assert missing.returncode == 1 and "ActivityDoesNotExist" in missing.stderr


def test_cli_poll_prints_the_token_and_input_of_a_task(tmp_path, sfn, server, activity):
    if not server.db.startswith("sqlite"):
        pytest.skip("the CLI shares the server's SQLite file here")
    execution = start(sfn, {"Resource": activity})
    polled = cli("activity", "poll", activity, "--worker-name", "shell", "--wait", "10", db=server.db)
    assert polled.returncode == 0, polled.stderr
    task = json.loads(polled.stdout)
    assert task["input"] == DATA
    sfn.send_task_success(taskToken=task["taskToken"], output="null")
    assert json.loads(until_closed(sfn, execution)["output"])["answer"] is None
    assert ("ActivityStarted", {"workerName": "shell"}) in activity_events(sfn, execution)
