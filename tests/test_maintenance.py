"""The sweep: queues again what Redis lost, and nothing that is still on its way."""

from __future__ import annotations

from bot.queue import get_queue
from tests.factories import message_params, post_signed
from tests.helpers import BurstWorker, queued_jobs, run_worker
from workers.maintenance import requeue_pending


def test_sweep_answers_a_message_that_redis_lost(app, client, twilio):
    post_signed(client, "/twilio/messages", message_params())
    get_queue(app).connection.flushdb()

    assert requeue_pending(grace_seconds=0) == 1
    run_worker(app)

    assert len(twilio.messages) == 1


def test_sweep_does_not_duplicate_a_queued_message(app, client, twilio):
    post_signed(client, "/twilio/messages", message_params())

    requeue_pending(grace_seconds=0)
    requeue_pending(grace_seconds=0)

    assert queued_jobs(app) == 1


def test_sweep_leaves_a_reply_waiting_for_its_retry_alone(app, client, twilio):
    twilio.fail_next(1, status=500)
    post_signed(client, "/twilio/messages", message_params())
    queue = get_queue(app)
    # Answer and try to send once; the retry now waits in RQ's schedule.
    BurstWorker([queue], connection=queue.connection).work(burst=True)
    assert queue.scheduled_job_registry.count == 1

    requeue_pending(grace_seconds=0)
    run_worker(app)

    assert len(twilio.messages) == 1
    assert twilio.state.requests == 2


def test_sweep_skips_young_messages(app, client):
    post_signed(client, "/twilio/messages", message_params())
    get_queue(app).connection.flushdb()

    assert requeue_pending() == 0
