"""Activities through a real ``statemill serve`` and boto3 workers in other processes (issue 17, "Measured").

    python bench/activities_bench.py            # 400 tasks to 4 workers, 30 latency samples (about a minute)
    python bench/activities_bench.py --quick    # 100 tasks, 10 samples
    python bench/activities_bench.py --db postgresql://...   # another database (default: a temp SQLite file)

1. Latency: one boto3 poll waits in GetActivityTask; this process starts an execution; we measure from the
   ActivityScheduled event to the ActivityStarted event (the server's clock: the worker scheduled the task, the
   poll took it) and, from outside, from StartExecution returning to the poll answering.
2. Throughput: N executions are started; 4 worker processes poll, answer SendTaskSuccess, poll again. Tasks/s is N
   over the time from the first task taken to the last answered. The baseline, measured in the same run by the same
   4 processes: plain DescribeActivity requests/s (what the server answers when there is nothing to wait for).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROLE = "arn:aws:iam::000000000000:role/bench"


def client(url: str):
    return boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}, read_timeout=70,
                                                                 max_pool_connections=4))


def worker(url: str, arn: str, mode: str, count: int) -> None:
    """A worker process: ``tasks`` polls and answers ``count`` tasks; ``plain`` sends ``count`` DescribeActivity.
    Prints the monotonic-free wall times (time.time) of its first and last operation."""
    sfn = client(url)
    first = None
    done = 0
    while done < count:
        if mode == "plain":
            sfn.describe_activity(activityArn=arn)
        else:
            task = sfn.get_activity_task(activityArn=arn, workerName=f"w{os.getpid()}")
            if not task.get("taskToken"):
                continue
            sfn.send_task_success(taskToken=task["taskToken"], output="0")
        first = first or time.time()
        done += 1
    print(json.dumps({"first": first, "last": time.time()}), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db")
    args = parser.parse_args()
    tasks, samples = (100, 10) if args.quick else (400, 30)
    folder = tempfile.mkdtemp(prefix="statemill-activities-bench-")
    db = args.db or f"sqlite:///{folder}/bench.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "statemill.cli.main", "serve", "--port", str(port), "--db", db,
                               "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        sfn = client(url)
        arn = sfn.create_activity(name=f"bench-{os.getpid()}")["activityArn"]
        definition = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": arn, "End": True}}}
        machine = sfn.create_state_machine(name=f"bench-{os.getpid()}", definition=json.dumps(definition),
                                           roleArn=ROLE)["stateMachineArn"]
        print(f"database: {db.split('://')[0]}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

        inside, outside = [], []
        for _ in range(samples):
            got = {}
            poll = threading.Thread(target=lambda: got.update(task=client(url).get_activity_task(activityArn=arn),
                                                              at=time.monotonic()))
            poll.start()
            time.sleep(0.15)  # the poll is waiting
            execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
            started = time.monotonic()
            poll.join()
            outside.append(got["at"] - started)
            sfn.send_task_success(taskToken=got["task"]["taskToken"], output="0")
            stamps = {e["type"]: e["timestamp"].timestamp()
                      for e in sfn.get_execution_history(executionArn=execution)["events"]}
            inside.append(stamps["ActivityStarted"] - stamps["ActivityScheduled"])
        for name, values in (("scheduled -> taken (history)", inside), ("StartExecution -> poll answers", outside)):
            ms = sorted(v * 1000 for v in values)
            print(f"latency {name}: p50 {statistics.median(ms):.1f} ms, p90 {ms[int(len(ms) * 0.9) - 1]:.1f} ms, "
                  f"max {ms[-1]:.1f} ms ({len(ms)} samples, a poll waiting)")

        def four(mode: str, each: int) -> float:
            procs = [subprocess.Popen([sys.executable, __file__, "--worker", url, arn, mode, str(each)],
                                      stdout=subprocess.PIPE, text=True) for _ in range(4)]
            spans = [json.loads(p.communicate()[0]) for p in procs]
            return 4 * each / (max(s["last"] for s in spans) - min(s["first"] for s in spans))

        for _ in range(tasks):
            sfn.start_execution(stateMachineArn=machine, input="{}")
        rate = four("tasks", tasks // 4)
        plain = four("plain", tasks // 4)
        print(f"throughput: {rate:.0f} tasks/s handed out and answered by 4 boto3 workers; baseline "
              f"{plain:.0f} DescribeActivity/s by the same 4; ratio {rate / plain:.2f} (each task is 2 requests)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        if not args.db:
            for f in Path(folder).iterdir():
                f.unlink()
            os.rmdir(folder)


if __name__ == "__main__":
    main()
