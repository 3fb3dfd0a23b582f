"""Working through stored inbound texts until each is answered or handed to a person."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import ColumnElement, exists
from sqlalchemy.orm import aliased

from bot.conversation.handler import Conversation
from bot.smartrr.errors import SmartrrUnavailable
from bot.storage.claims import PENDING_WORK, claim_pending, retry_later
from bot.storage.db import Database
from bot.storage.models import InboundMessage, InboundStatus, utcnow

log = logging.getLogger(__name__)

BATCH = 20

_earlier = aliased(InboundMessage)
#: No earlier text from the same number is still pending.
FIRST_UNANSWERED_OF_ITS_NUMBER: ColumnElement[bool] = ~exists().where(
    _earlier.from_number == InboundMessage.from_number,
    _earlier.status == InboundStatus.PENDING,
    _earlier.id < InboundMessage.id,
)


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
            lease=PENDING_WORK.lease,
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
        # Smartrr is down: try again later, and after the last try a person takes over.
        if retry_later(database, InboundMessage, inbound_id, attempts, str(exc), clock()):
            log.warning("inbound %s: Smartrr unavailable, try %d later", inbound_id, attempts)
        else:
            log.error("inbound %s: Smartrr still unavailable after %d tries", inbound_id, attempts)
            conversation.give_up(inbound_id, str(exc))
    except Exception:
        # A bug must not lose the text: a person gets it, the subscriber an apology.
        log.exception("handling inbound %s failed", inbound_id)
        conversation.give_up(inbound_id, "internal error")
