"""Console pages over real activity: upcoming queue, conversations, inbox, overview.

Each test signs in after freezing time: the session cookie is dated, so a session made
in real time would look long expired at the frozen moment.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from conftest import SEED_NOW, Phone
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_console_support import signed_in
from twilio_fake import TwilioFake

from bot import create_app
from bot.console.chart import line_chart
from bot.storage.db import get_db
from bot.storage.models import InboundMessage, OutboundMessage, Subscriber
from bot.worker import Worker

MARCUS = "+13125794420"  # Chicago; Protein Bars bill 2026-11-26 14:00 UTC
MARCUS_AWAKE = SEED_NOW + timedelta(hours=3)  # 11:00 CST, his notice's send time


def scalar(app: Flask, stmt: Any) -> Any:
    """One value read in a short transaction of its own (SQLite lets one writer in at a time)."""
    with get_db(app).begin() as db:
        return db.scalars(stmt).one()


def planned(app: Flask) -> Worker:
    worker = Worker(app)
    worker.sync()
    worker.plan()
    return worker


def test_upcoming_lists_notices_with_masked_phone_local_time_and_products(app: Flask) -> None:
    with freeze_time(SEED_NOW):
        console = signed_in(app)
        planned(app)
        page = console.text("/console/upcoming")
    assert "6 notices" in page  # Dana is paused: no notice
    assert MARCUS not in page
    assert "+1 ••• ••• 4420" in page
    row = page[page.index("Marcus Johnson") :]
    assert "Nov 23, 11:00 CST" in row  # 08:00 is too early: moved to his waking hours
    assert "America/Chicago" in row
    assert "Protein Bars" in row
    assert "Nov 26, 08:00 CST" in row  # the order itself


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"q": "marcus"}, ["Marcus Johnson"]),
        ({"q": "protein bars"}, ["Marcus Johnson", "Kenji Watanabe"]),
        ({"q": "4420"}, ["Marcus Johnson"]),
        ({"q": "100%"}, []),
        ({"status": "sent"}, []),
    ],
)
def test_upcoming_filters_by_status_and_words(
    app: Flask, query: dict[str, str], names: list[str]
) -> None:
    with freeze_time(SEED_NOW):
        console = signed_in(app)
        planned(app)
        page = console.text("/console/upcoming", query_string=query)
    shown = re.findall(r'href="/console/conversations/\d+">([^<]+)</a>', page)
    assert shown == names


def test_upcoming_warns_when_a_window_opening_needs_too_long(
    app: Flask, config: dict[str, Any]
) -> None:
    slow = create_app({**config, "SMS_RATE_PER_SECOND": 0.001})
    with freeze_time(SEED_NOW):
        planned(slow)
        page = signed_in(slow).text("/console/upcoming")
    assert "Busy window openings" in page
    assert re.search(r"1 texts due at \d\d:\d\d \w+ on \w+ \d+ need 17 min at 0.001 msg/s", page)
    get_db(slow).dispose()


def test_conversation_shows_both_directions_in_order_with_intent_and_smartrr_result(
    app: Flask, phone: Phone, twilio: TwilioFake
) -> None:
    with freeze_time(MARCUS_AWAKE) as clock:
        console = signed_in(app)
        worker = planned(app)
        worker.dispatch()
        clock.tick(60)
        phone.text(MARCUS, "SKIP")
        worker.inbox()
        listing = console.text("/console/conversations")
        marcus = scalar(app, select(Subscriber.id).where(Subscriber.phone == MARCUS))
        page = console.text(f"/console/conversations/{marcus}")
    assert "Marcus Johnson" in listing
    notice, confirmation = twilio.state.bodies_to(MARCUS)
    positions = [page.index(text) for text in (notice, "SKIP</p>", confirmation)]
    assert positions == sorted(positions)
    assert "skip → skip" in page
    assert "Smartrr skip: <strong>ok</strong>" in page
    assert "Protein Bars: ACTIVE, next order Dec 26" in page


def test_inbox_lists_unhandled_replies_newest_first_and_marks_them_handled(
    app: Flask, phone: Phone, session: Session
) -> None:
    with freeze_time(MARCUS_AWAKE) as clock:
        console = signed_in(app)
        worker = planned(app)
        phone.text(MARCUS, "what is this about?")
        clock.tick(60)
        phone.text(MARCUS, "hello??")
        worker.inbox()
        page = console.text("/console/inbox")
        assert "(2 open)" in page
        assert page.index("hello??") < page.index("what is this about?")
        assert "Needs a person: Marcus Johnson" in page

        older = scalar(
            app, select(InboundMessage.id).where(InboundMessage.body == "what is this about?")
        )
        response = console.post(f"/console/inbox/{older}/handled")
        assert response.status_code == 302
        page = console.text("/console/inbox")
    assert "(1 open)" in page
    assert "what is this about?" not in page
    handled_at = session.scalars(
        select(InboundMessage.handled_at).where(InboundMessage.id == older)
    ).one()
    assert handled_at == MARCUS_AWAKE + timedelta(seconds=60)


def test_inbox_reply_goes_out_through_the_transport_and_marks_the_item_handled(
    app: Flask, phone: Phone, twilio: TwilioFake, session: Session
) -> None:
    with freeze_time(MARCUS_AWAKE):
        console = signed_in(app)
        worker = planned(app)
        phone.text(MARCUS, "who is this?")
        worker.inbox()
        inbound_id = scalar(app, select(InboundMessage.id))
        empty = console.post(f"/console/inbox/{inbound_id}/reply", {"body": "  "})
        assert empty.status_code == 302
        response = console.post(
            f"/console/inbox/{inbound_id}/reply",
            {"body": "Hi Marcus, this is Bean Club. Happy to help!", "handled": "on"},
        )
        assert response.status_code == 302
        page = console.text("/console/inbox")
    assert "Reply sent." in page
    assert "who is this?" not in page
    assert twilio.state.bodies_to(MARCUS)[-1] == "Hi Marcus, this is Bean Club. Happy to help!"
    manual = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "manual")).one()
    assert (manual.status, manual.in_reply_to_id, manual.template) == ("sent", inbound_id, "manual")


def test_inbox_reply_to_an_opted_out_subscriber_is_not_sent(
    app: Flask, phone: Phone, twilio: TwilioFake
) -> None:
    with freeze_time(MARCUS_AWAKE):
        console = signed_in(app)
        worker = planned(app)
        phone.text(MARCUS, "STOP")
        phone.text(MARCUS, "are you still there")
        worker.inbox()
        item = scalar(app, select(InboundMessage.id).where(InboundMessage.status == "handoff"))
        sent_before = len(twilio.state.bodies_to(MARCUS))
        console.post(f"/console/inbox/{item}/reply", {"body": "Sorry to see you go"})
        page = console.text("/console/inbox")
    assert "Reply not sent (cancelled: subscriber opted out)" in page
    assert len(twilio.state.bodies_to(MARCUS)) == sent_before


def test_overview_counts_the_days_activity_and_the_share_the_bot_handled(
    app: Flask, phone: Phone
) -> None:
    with freeze_time(MARCUS_AWAKE) as clock:
        console = signed_in(app)
        worker = planned(app)
        worker.dispatch()
        clock.tick(60)
        phone.text(MARCUS, "SKIP")
        phone.text(MARCUS, "what?")
        worker.inbox()
        page = console.text("/console/")
    totals = dict(re.findall(r"</svg>([^<]+)</dt>\s*<dd>([\d,]+)</dd>", page))
    assert totals["Skips"] == "1"
    assert totals["Replies"] == "2"
    assert totals["Delays"] == "0"
    assert int(totals["Notices sent"]) >= 1
    assert "50%" in page
    assert "1 of 2 replies" in page
    assert page.count("<polyline") == len(totals)
    assert 'role="img"' in page


def test_chart_scales_to_a_round_maximum_and_spaces_the_days() -> None:
    chart = line_chart(["Nov 1", "Nov 2", "Nov 3"], {"Sent": [0, 7, 3], "Failed": [0, 0, 0]})
    assert [tick.label for tick in chart.y_ticks] == ["0", "2", "4", "6", "8"]
    sent, failed = chart.lines
    assert sent.total == 10
    xs = [float(point.split(",")[0]) for point in sent.points.split()]
    assert xs == sorted(xs)
    assert xs[0] == chart.plot_left
    assert xs[-1] == chart.plot_right
    assert {float(point.split(",")[1]) for point in failed.points.split()} == {chart.plot_bottom}
