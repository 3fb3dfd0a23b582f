"""Working through stored inbound texts until each is answered or handed to a person."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists
from sqlalchemy.orm import aliased

from bot.conversation.handler import Conversation
from bot.smartrr.client import SmartrrUnavailable
from bot.storage.claims import claim_pending, postpone
from bot.storage.db import Database
from bot.storage.models import InboundMessage, utcnow

log = logging.getLogger(__name__)

#: Long enough for the Smartrr client's own retries to finish inside it.
LEASE = timedelta(minutes=5)
#: With retry_delay this spans about 26 minutes: a Smartrr outage of ten
#: minutes is ridden out; a longer one goes to a person.
MAX_ATTEMPTS = 8
BATCH = 20

_earlier = aliased(InboundMessage)
#: No earlier text from the same number is still pending.
FIRST_UNANSWERED_OF_ITS_NUMBER: ColumnElement[bool] = ~exists().where(
    _earlier.from_number == InboundMessage.from_number,
    _earlier.status == "pending",
    _earlier.id < InboundMessage.id,
)


def retry_delay(attempts: int) -> timedelta:
    """Back off between attempts: 15 s, 30 s, 1 min, 2 min... capped at 10 min."""
    return timedelta(seconds=min(600, 15 * 2 ** max(0, attempts - 1)))


def process_inbox(
    database: Database,
    conversation: Conversation,
    owner: str,
    clock: Callable[[], datetime] = utcnow,
    *,
    concurrency: int = 1,
) -> int:
    """Claim a batch of pending texts and handle each; return how many were taken.

    A number's texts are answered in the order they came, whichever worker takes
    them: one is claimed only once every earlier text from its number is answered, so
    an UNDO never overtakes the SKIP it undoes, even while that SKIP waits for a retry.
    A batch therefore holds at most one text per number, and up to ``concurrency`` of
    them are handled at once, each in its own transactions, as separate workers would.
    """
    now = clock()
    with database.begin() as session:
        work = claim_pending(
            session,
            InboundMessage,
            limit=BATCH,
            owner=owner,
            lease=LEASE,
            now=now,
            also=(FIRST_UNANSWERED_OF_ITS_NUMBER,),
        )

    def handle(item: tuple[int, int]) -> None:
        _handle(database, conversation, *item, clock)

    if concurrency > 1 and len(work) > 1:
        with ThreadPoolExecutor(min(concurrency, len(work)), thread_name_prefix="inbox") as pool:
            list(pool.map(handle, work))
    else:
        for item in work:
            handle(item)
    return len(work)


def _handle(
    database: Database,
    conversation: Conversation,
    inbound_id: int,
    attempts: int,
    clock: Callable[[], datetime],
) -> None:
    try:
        conversation.handle(inbound_id)
    except SmartrrUnavailable as exc:
        _later(database, conversation, inbound_id, attempts, str(exc), clock)
    except Exception:
        # A bug must not lose the text: a person gets it, the subscriber an apology.
        log.exception("handling inbound %s failed", inbound_id)
        conversation.give_up(inbound_id, "internal error")


def _later(
    database: Database,
    conversation: Conversation,
    inbound_id: int,
    attempts: int,
    reason: str,
    clock: Callable[[], datetime],
) -> None:
    if attempts >= MAX_ATTEMPTS:
        log.error("inbound %s: Smartrr still unavailable after %d tries", inbound_id, attempts)
        conversation.give_up(inbound_id, reason)
        return
    with database.begin() as session:
        postpone(
            session, InboundMessage, inbound_id, at=clock() + retry_delay(attempts), reason=reason
        )
    log.warning("inbound %s: Smartrr unavailable, try %d later", inbound_id, attempts)
