"""SQLAlchemy 2 typed models. Every timestamp is an aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current moment, aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SubscriptionStatus(StrEnum):
    """A Smartrr purchase state's status (the Vendor API's PurchaseStateStatus)."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"


class SendStatus(StrEnum):
    """Where an outbound text stands: queued by us, with the provider, or closed."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    #: Twilio's own in-flight states, recorded as its receipts report them.
    ACCEPTED = "accepted"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class InboundStatus(StrEnum):
    """Where an inbound text stands: still to answer, answered, or left to a person."""

    PENDING = "pending"
    DONE = "done"
    HANDOFF = "handoff"


class EventStatus(StrEnum):
    """Where a stored Smartrr webhook delivery stands."""

    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"


class ActionResult(StrEnum):
    """How a change the bot asked Smartrr to make ended (STARTED until it is known)."""

    STARTED = "started"
    OK = "ok"
    REJECTED = "rejected"
    FAILED = "failed"
    #: A request of ours Smartrr refused.
    REFUSED = "refused"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
    }


class Shop(Base):
    """The merchant. The bot serves one shop; the row holds its editable settings."""

    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    time_zone: Mapped[str] = mapped_column(String(64))
    account_page_url: Mapped[str] = mapped_column(String(500))
    #: Merchant overrides of the environment's defaults (None: use the environment's).
    send_window: Mapped[str | None] = mapped_column(String(16))
    notice_days_before: Mapped[int | None]
    max_delay_days: Mapped[int | None]
    cancel_by_text: Mapped[bool] = mapped_column(default=False)
    #: The Smartrr cancellation reason a cancel by text is filed under.
    cancel_reason_id: Mapped[str | None] = mapped_column(String(64))
    #: What a bare PAUSE offers ("1 month, 2 months, 3 months"); None: the environment's.
    pause_options: Mapped[str | None] = mapped_column(String(200))
    max_pause_days: Mapped[int | None]
    #: Bot-initiated texts go out only while this is on (replies always do).
    sending_enabled: Mapped[bool] = mapped_column(default=True)
    #: Per event kind on/off switches for event texts, e.g. {"welcome": true}.
    event_texts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Go-live checklist acknowledgements.
    templates_reviewed_at: Mapped[datetime | None]
    smartrr_notice_off_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscriber(Base):
    """A Smartrr customer we can text."""

    __tablename__ = "subscribers"
    __table_args__ = (UniqueConstraint("shop_id", "smartrr_customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    smartrr_customer_id: Mapped[str] = mapped_column(String(64))
    shopify_customer_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    #: US state from the address, for the stricter state windows.
    state: Mapped[str | None] = mapped_column(String(2))
    opted_out_at: Mapped[datetime | None]
    #: Set after repeated carrier failures (30003/30005/30006): texts stop.
    unreachable_at: Mapped[datetime | None]
    failed_deliveries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(back_populates="subscriber")

    @property
    def opted_out(self) -> bool:
        """True when the subscriber has revoked consent (STOP)."""
        return self.opted_out_at is not None


class Subscription(Base):
    """A Smartrr purchase state, as of the last sync or action."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    smartrr_id: Mapped[str] = mapped_column(String(64), unique=True)
    shopify_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # a SubscriptionStatus
    next_billing_at: Mapped[datetime | None]
    products: Mapped[str] = mapped_column(String(500))
    interval_unit: Mapped[str | None] = mapped_column(String(16))
    interval_count: Mapped[int | None]
    unpause_at: Mapped[datetime | None]
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")


class OutboundMessage(Base):
    """A text we send: a planned notice or a reply. Its row is its own send queue entry."""

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # notice | reply | manual
    #: Idempotency key: notices are unique per (subscription, kind, billing date).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    to_number: Mapped[str] = mapped_column(String(20))
    template: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    billing_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=SendStatus.SCHEDULED)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: A bot-initiated text that has not left by this moment is expired, not sent late.
    expires_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    status_at: Mapped[datetime | None]


class InboundMessage(Base):
    """A text a subscriber sent us, stored before the webhook answers."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_status_next", "status", "next_attempt_at"),
        # A number's texts, and among them its unanswered ones (the inbox answers a
        # number's texts in order: see bot.conversation.inbox).
        Index("ix_inbound_from_status", "from_number", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: pending → done, or → handoff when a person must look at it.
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"), index=True)
    intent: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
    processed_at: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]


class ActionLog(Base):
    """A change the bot asked Smartrr to make, written before the call is made."""

    __tablename__ = "action_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    #: The notice the subscriber was answering, so a second SKIP is recognised.
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_messages.id"))
    #: skip | unskip | delay | pause | activate | cancel
    action: Mapped[str] = mapped_column(String(16))
    #: The moment sent to Smartrr: the order skipped or restored, the new billing moment
    #: of a delay or a resume, the end of a pause.
    argument_at: Mapped[datetime | None]
    #: The cancellation reason of a cancel.
    reason_id: Mapped[str | None] = mapped_column(String(64))
    #: The entry this one undoes (UNDO).
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("action_log.id"))
    #: started → ok | rejected | failed | refused (an ActionResult); an entry reversed
    #: by UNDO keeps its result and gets ``undone_at``.
    result: Mapped[str] = mapped_column(String(16), default=ActionResult.STARTED)
    old_billing_at: Mapped[datetime | None]
    #: When the subscription was due to resume before this change (UNDO of a resume).
    old_unpause_at: Mapped[datetime | None]
    new_billing_at: Mapped[datetime | None]
    detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None]


class PendingQuestion(Base):
    """A question the bot asked a subscriber; the next matching answer resolves it."""

    __tablename__ = "pending_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # delay_options | which_subscription
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SendGate(Base):
    """One row per sender: the earliest moment the next text may leave (rate limit)."""

    __tablename__ = "send_gate"

    id: Mapped[int] = mapped_column(primary_key=True)
    next_at: Mapped[datetime]


class Heartbeat(Base):
    """When each worker process last ran its scheduler."""

    __tablename__ = "heartbeats"

    worker: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[datetime]


class OutboxMessage(Base):
    """What the outbox transport 'sent' when no Twilio credentials are set."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    to_number: Mapped[str] = mapped_column(String(20), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A merchant console account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TemplateVersion(Base):
    """One saved wording of a message template; the newest per name is in force."""

    __tablename__ = "template_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(320))
    note: Mapped[str | None] = mapped_column(String(200))  # "restored version 3", "reset"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmartrrEvent(Base):
    """A Smartrr webhook delivery, stored raw before it is applied."""

    __tablename__ = "smartrr_events"
    __table_args__ = (Index("ix_smartrr_events_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The event's own id, else a hash of the payload.
    event_key: Mapped[str] = mapped_column(String(128), unique=True)
    topic: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    purchase_state_id: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(500))
    applied_at: Mapped[datetime | None]


class SandboxRecord(Base):
    """One object of the built-in Smartrr sandbox, shared by every process of the bot.

    ``kind`` is purchase-state, webhook, phone, cancellation-reason or seeded (the marker
    that the demo data went in once); ``body`` is the object as the Vendor API answers it.
    """

    __tablename__ = "sandbox_records"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: What the sandbox knows of a purchase state but does not show: the skipped orders
    #: and the unpause date (see bot.smartrr.sandbox.actions).
    notes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
