"""GetActivityTask's waiting polls are woken by this process's workers when they schedule an activity task."""
import asyncio
import threading

from statemill.server.wakeups import Wakeups


def scheduled(*types):
    return {"execution": "arn", "events": [(t, None) for t in types], "state": None, "status": None}


def test_a_worker_thread_scheduling_an_activity_wakes_a_waiting_poll():
    async def scenario():
        wakeups = Wakeups()
        seen = wakeups.generation
        waiting = asyncio.ensure_future(wakeups.wait(seen, 600))  # far longer than the test may take
        await asyncio.sleep(0)  # the poll is now waiting (and the loop known)
        poke = scheduled("TaskStateEntered", "ActivityScheduled")
        threading.Thread(target=wakeups.on_transition, args=(poke,)).start()
        await asyncio.wait_for(waiting, 10)  # raises TimeoutError if the poke did not wake it
        return seen, wakeups.generation

    seen, now = asyncio.run(scenario())
    assert now == seen + 1


def test_other_transitions_do_not_wake_and_a_missed_poke_is_not_lost():
    async def scenario():
        wakeups = Wakeups()
        await wakeups.wait(wakeups.generation, 0)  # learn the loop
        seen = wakeups.generation
        wakeups.on_transition(scheduled("TaskStateEntered", "TaskScheduled"))
        await asyncio.sleep(0.01)
        quiet = wakeups.generation
        wakeups.on_transition(scheduled("ActivityScheduled"))  # poked between the attempt and the wait
        await asyncio.sleep(0.01)
        await asyncio.wait_for(wakeups.wait(seen, 600), 10)  # returns at once: the generation already moved
        return seen, quiet, wakeups.generation

    seen, quiet, after = asyncio.run(scenario())
    assert quiet == seen
    assert after == seen + 1
