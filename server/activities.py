"""Activity actions: CreateActivity, DescribeActivity, ListActivities, DeleteActivity and GetActivityTask.

GetActivityTask is AWS's long poll: it answers as soon as a task of the activity is scheduled, else after the poll
length (AWS: 60 s; ``STATEMILL_ACTIVITY_POLL_SECONDS`` shortens it, for tests) with no taskToken. It runs on the
event loop and only each attempt (one short transaction) goes to the thread pool, so waiting pollers hold no thread
and never block other requests. A worker of this process that schedules a task wakes the waiting polls at once
(``server/wakeups.py``); otherwise, for workers in other processes, a poll retries with a backoff from 5 ms to
25 ms. An attempt that finds nothing is one indexed read, never a write transaction.
"""
from __future__ import annotations

import os
import time

from starlette.concurrency import run_in_threadpool

from statemill.engine import activities as a

from .arns import local, parse
from .pages import page
from .protocol import ApiError, Call, action
from .state_machines import tag_pairs

POLL_SECONDS = 60.0  # AWS holds a GetActivityTask request at most this long
FIRST_PAUSE, LAST_PAUSE = 0.005, 0.025


def poll_seconds() -> float:
    """The long poll's length: ``STATEMILL_ACTIVITY_POLL_SECONDS`` (0 to 60), else AWS's 60 s."""
    text = os.environ.get("STATEMILL_ACTIVITY_POLL_SECONDS")
    try:
        return POLL_SECONDS if text is None else min(POLL_SECONDS, max(0.0, float(text)))
    except ValueError:
        raise ApiError("InternalServerError", f"STATEMILL_ACTIVITY_POLL_SECONDS={text!r} is not a number of "
                       "seconds; restart the server with 0 to 60", 500) from None


def _arn(call: Call) -> str:
    """The request's activityArn; InvalidArn unless it is an activity ARN, ActivityDoesNotExist when it is one
    of another region or account (nothing of those lives here)."""
    arn = call.require("activityArn")
    parts = parse(arn, "activityArn", ("activity",))
    if len(parts) != 7:
        raise ApiError("InvalidArn", f"Invalid Arn: '{arn}' (activityArn: expected "
                       "arn:aws:states:REGION:ACCOUNT:activity:NAME)")
    if not local(call, parts):
        raise a.ActivityDoesNotExist(f"Activity Does Not Exist: '{arn}'")
    return arn


def _item(found: dict) -> dict:
    return {**found, "creationDate": round(found["creationDate"], 3)}


@action("CreateActivity")
def create_activity(call: Call) -> dict:
    if call.get("encryptionConfiguration", dict) not in (None, {"type": "AWS_OWNED_KEY"}):
        raise ApiError("InvalidEncryptionConfiguration", "statemill keeps activities unencrypted in its database: "
                       "leave encryptionConfiguration out, or give {\"type\": \"AWS_OWNED_KEY\"}")
    return _item(a.create(call.client, call.require("name"), tag_pairs(call)))


@action("DescribeActivity")
def describe_activity(call: Call) -> dict:
    return _item(a.describe(call.client, _arn(call)))


@action("DeleteActivity")
def delete_activity(call: Call) -> dict:
    a.delete(call.client, _arn(call))
    return {}


@action("ListActivities")
def list_activities(call: Call) -> dict:
    prefix = a.activity_arn(call.client, "")
    return page(call, {"a": "ListActivities"}, "activities", lambda after, n: a.page(call.client, prefix, after, n),
                _item, lambda row: row["activityArn"])


@action("GetActivityTask")
async def get_activity_task(call: Call) -> dict:
    arn = _arn(call)
    worker = call.get("workerName")
    if worker is not None and not 1 <= len(worker) <= 80:
        raise ApiError("ValidationException", "1 validation error detected: Value at 'workerName' failed to "
                       "satisfy constraint: Member must have length between 1 and 80")
    deadline = time.monotonic() + poll_seconds()
    pause = FIRST_PAUSE
    wakeups = call.server.wakeups
    while True:
        seen = wakeups.generation
        task = await run_in_threadpool(a.take_task, call.client, arn, worker)
        if task is not None:
            return task
        left = deadline - time.monotonic()
        if left <= 0:
            return {}  # AWS: no taskToken when nothing came within the poll
        await wakeups.wait(seen, min(pause, left))
        pause = min(pause * 2, LAST_PAUSE)
