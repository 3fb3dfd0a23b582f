"""The inbox job: every stored text is answered or handed to a person, never lost or doubled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from test_conversation import DANA, MARCUS, MAYA, MORNING, Bot, billing_day
from test_conversation import bot as bot  # the fixture, shared

from bot import create_app
from bot.storage.claims import PENDING_WORK
from bot.storage.db import get_db
from bot.storage.models import InboundMessage, PendingQuestion, Subscriber
from bot.worker import Worker

FAILED = "Bean Club: We could not update your order right now. Our team will follow up shortly."


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(1, 15), (2, 30), (3, 60), (4, 120), (5, 240), (6, 480), (7, 600), (30, 600)],
)
def test_retries_back_off_and_the_wait_is_capped(attempts: int, seconds: int) -> None:
    assert PENDING_WORK.delay(attempts) == timedelta(seconds=seconds)


def test_claiming_texts_walks_the_index_instead_of_sorting_every_pending_one(bot: Bot) -> None:
    # A burst of replies must not make each claim dearer: on SQLite it runs inside the
    # write lock that every webhook waits on.
    engine = bot.session.get_bind()
    if engine.dialect.name != "sqlite":
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN, which PostgreSQL does not have")
    claims: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, sql: str, params: object, *_: object) -> None:
        if sql.lstrip().startswith("SELECT") and "FROM inbound_messages" in sql and "LIMIT" in sql:
            claims.append((sql, params))

    event.listen(Engine, "before_cursor_execute", capture)  # the worker's engine too
    try:
        bot.text(MARCUS, "next")
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    assert claims, "the inbox job claimed nothing"
    sql, params = claims[0]
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
    details = [row[-1] for row in plan]
    assert any("ix_inbound_status_next" in detail for detail in details), details
    assert not any("TEMP B-TREE" in detail for detail in details), details
    # The look for an earlier unanswered text of the same number reads that number's
    # unanswered texts only, not its whole history.
    assert any("ix_inbound_from_status (from_number=? AND status=?" in d for d in details), details


def _claimed_by(bot: Bot, owner: str) -> None:
    """Stamp the only stored text as ``owner``'s first try, leased for 5 minutes."""
    inbound = bot.session.scalars(select(InboundMessage)).one()
    inbound.lease_owner = owner
    inbound.lease_until = inbound.received_at + timedelta(minutes=5)
    inbound.attempts = 1
    bot.session.commit()


def test_a_text_claimed_by_a_worker_that_died_is_taken_over_when_its_lease_ends(
    bot: Bot,
) -> None:
    bot.worker.sync()
    bot.phone.text(MARCUS, "skip")
    # What a worker that claimed the text and died leaves behind.
    _claimed_by(bot, "dead-worker")

    bot.worker.inbox()
    assert bot.puts() == []

    bot.later(timedelta(minutes=5, seconds=1))
    bot.worker.inbox()
    assert len(bot.puts("/skip")) == 1
    assert billing_day(bot.state(MARCUS)) == "2026-12-26"
    assert bot.last_inbound().attempts == 2


def test_a_numbers_texts_are_answered_in_order_whichever_worker_takes_them(bot: Bot) -> None:
    bot.worker.sync()
    bot.phone.text(MARCUS, "skip")
    # Another worker has claimed the SKIP and is still at it (or died holding it)...
    _claimed_by(bot, "slow-worker")
    # ...when the UNDO comes: it must not overtake the SKIP it undoes.
    bot.phone.text(MARCUS, "undo")
    bot.phone.text(MAYA, "next")  # another number's text is not held up

    bot.worker.inbox()
    assert bot.outcomes() == [None, None, "next"]
    assert bot.puts() == []

    bot.later(timedelta(minutes=5, seconds=1))
    bot.worker.inbox()
    assert bot.outcomes() == ["skip", "undone", "next"]
    assert [path.rsplit("/", 1)[-1] for path in bot.puts()] == ["skip", "unskip"]
    assert billing_day(bot.state(MARCUS)) == "2026-11-26"


def test_a_bug_while_handling_a_text_hands_it_to_a_person_with_an_apology(bot: Bot) -> None:
    bot.worker.sync()
    # A question left by an older version in a shape this one cannot read.
    subscriber = bot.session.scalars(select(Subscriber).where(Subscriber.phone == MARCUS)).one()
    bot.session.add(
        PendingQuestion(
            subscriber_id=subscriber.id,
            kind="which_subscription",
            payload={"intent": "teleport", "subscription_ids": [1]},
            expires_at=MORNING + timedelta(hours=1),
        )
    )
    bot.session.commit()

    assert bot.text(MARCUS, "1") == [FAILED]

    inbound = bot.last_inbound()
    assert (inbound.status, inbound.error) == ("handoff", "internal error")
    assert bot.puts() == []


def test_a_text_is_handled_once_however_often_the_job_runs(bot: Bot) -> None:
    bot.worker.sync()
    bot.phone.text(MARCUS, "skip")

    for _ in range(3):
        bot.worker.inbox()

    assert len(bot.puts("/skip")) == 1
    assert len(bot.twilio.state.bodies_to(MARCUS)) == 1
    assert bot.last_inbound().status == "done"


@pytest.mark.parametrize(("concurrency", "at_once"), [("4", 2), ("1", 1)])
def test_a_worker_answers_several_numbers_at_once_and_each_text_once(
    bot: Bot, config: dict[str, Any], concurrency: str, at_once: int
) -> None:
    # While Smartrr takes its time, texts from different numbers wait on it together,
    # up to INBOX_CONCURRENCY of them; one number's texts still come one after another.
    app = create_app({**config, "INBOX_CONCURRENCY": concurrency})
    try:
        worker = Worker(app)
        worker.sync()
        bot.sandbox.store.delay = 0.2
        for number, body in ((MARCUS, "skip"), (DANA, "resume"), (MARCUS, "undo")):
            bot.phone.text(number, body)

        worker.inbox()
    finally:
        app.extensions["smartrr"].close()
        get_db(app).dispose()

    assert bot.sandbox.store.most_in_flight == at_once
    assert bot.outcomes() == ["skip", "activate", "undone"]
    assert [len(bot.puts(action)) for action in ("/skip", "/activate", "/unskip")] == [1, 1, 1]
    assert len(bot.twilio.state.bodies_to(MARCUS)) == 2
    assert len(bot.twilio.state.bodies_to(DANA)) == 1
