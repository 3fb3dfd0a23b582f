"""A Smartrr-like Vendor API server speaking Smartrr's OpenAPI document, for the embedded
demo and for tests.

- `fixtures`: purchase states shaped as the document has them, and the demo shop's data;
- `actions`: what skip, pause, cancel … do to a purchase state (plain values);
- `store`: the data in memory (tests, benchmarks), with knobs that make the server misbehave;
- `database`: the data in the bot's own database, shared by every process (the demo);
- `server`: the HTTP face, which checks every request against the document.
"""

from __future__ import annotations

from bot.smartrr.sandbox.actions import ACTIONS, ActionRefused
from bot.smartrr.sandbox.database import DatabaseSandboxStore
from bot.smartrr.sandbox.fixtures import JSON, demo_seed, make_customer, make_purchase_state
from bot.smartrr.sandbox.server import SandboxServer, create_sandbox_app
from bot.smartrr.sandbox.store import SandboxStore
from bot.storage.db import Database

__all__ = [
    "ACTIONS",
    "JSON",
    "ActionRefused",
    "DatabaseSandboxStore",
    "SandboxServer",
    "SandboxStore",
    "create_sandbox_app",
    "demo_seed",
    "embedded",
    "make_customer",
    "make_purchase_state",
]


def embedded(database: Database) -> SandboxServer:
    """The sandbox an app without a Smartrr token uses (not started): its data lives in
    ``database``, seeded with the demo data the first time only."""
    store = DatabaseSandboxStore(database)
    store.seed_once()
    return SandboxServer(store)
