from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioFake

from bot.config import Settings, from_environ
from bot.outbound.sms import OutboxTransport, SmsError, TwilioTransport
from bot.storage.db import Database
from bot.storage.models import Base

TO = "+13125794420"


def settings_for(twilio: TwilioFake, **extra: str) -> Settings:
    environ = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_URL": twilio.url,
        **extra,
    }
    return Settings.from_config(from_environ(environ, "/x"))


def test_twilio_transport_sends_from_the_number_with_a_status_callback(twilio: TwilioFake) -> None:
    transport = TwilioTransport(settings_for(twilio, TWILIO_FROM_NUMBER=FROM_NUMBER))
    result = transport.send(TO, "hello", status_callback="https://bot.example.com/sms/status?m=1")
    [message] = twilio.messages
    assert result.sid == message["sid"] and result.status == "queued"
    assert (message["to"], message["from"], message["body"]) == (TO, FROM_NUMBER, "hello")
    assert message["status_callback"] == "https://bot.example.com/sms/status?m=1"


def test_twilio_transport_can_send_through_a_messaging_service(twilio: TwilioFake) -> None:
    transport = TwilioTransport(settings_for(twilio, TWILIO_MESSAGING_SERVICE_SID="MG123"))
    transport.send(TO, "hello")
    assert twilio.messages[0]["messaging_service_sid"] == "MG123"


def test_twilio_transport_needs_a_sender(twilio: TwilioFake) -> None:
    with pytest.raises(ValueError, match="TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"):
        TwilioTransport(settings_for(twilio))


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(429, 20429, True), (500, 20500, True), (503, 20503, True), (400, 21610, False)],
)
def test_twilio_errors_say_whether_to_retry(
    twilio: TwilioFake, status: int, code: int, retryable: bool
) -> None:
    transport = TwilioTransport(settings_for(twilio, TWILIO_FROM_NUMBER=FROM_NUMBER))
    twilio.fail_next(1, status=status, code=code)
    with pytest.raises(SmsError) as caught:
        transport.send(TO, "hello")
    assert caught.value.retryable is retryable
    assert caught.value.code == str(code)
    assert twilio.messages == []


def test_unreachable_twilio_is_a_retryable_error() -> None:
    environ = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_URL": "http://127.0.0.1:1",
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
    }
    transport = TwilioTransport(Settings.from_config(from_environ(environ, "/x")))
    with pytest.raises(SmsError) as caught:
        transport.send(TO, "hello")
    assert caught.value.retryable


def test_twilio_transport_finds_a_text_it_sent(twilio: TwilioFake) -> None:
    transport = TwilioTransport(settings_for(twilio, TWILIO_FROM_NUMBER=FROM_NUMBER))
    since = datetime.now(UTC) - timedelta(minutes=1)
    sent = transport.send(TO, "the notice")
    transport.send("+13034512298", "the notice")
    assert transport.find_sent(TO, "the notice", since) == sent.sid
    assert transport.find_sent(TO, "another body", since) is None


def test_outbox_transport_records_and_finds_its_texts(database_url: str) -> None:
    database = Database(database_url)
    Base.metadata.create_all(database.engine)
    transport = OutboxTransport(database)
    since = datetime.now(UTC) - timedelta(seconds=5)
    result = transport.send(TO, "hello")
    assert result.sid.startswith("OB") and result.status == "sent"
    assert transport.find_sent(TO, "hello", since) == result.sid
    assert transport.find_sent(TO, "hello", datetime.now(UTC) + timedelta(minutes=1)) is None
    Base.metadata.drop_all(database.engine)
    database.dispose()
