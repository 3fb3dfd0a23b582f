"""The shop row: created from the environment once, even by processes starting together."""

from __future__ import annotations

import threading

from flask import Flask

from bot.storage.db import get_db
from bot.storage.models import Shop
from bot.storage.shop import ensure_shop


def test_processes_starting_together_create_the_shop_once(app: Flask) -> None:
    database, settings = get_db(app), app.extensions["settings"]
    with database.read() as session:
        assert session.get(Shop, 1) is None
    created, release = threading.Event(), threading.Event()
    names: list[str] = []

    def first() -> None:
        with database.begin() as session:
            names.append(ensure_shop(session, settings).name)
            created.set()
            release.wait(10)  # its row is not committed yet

    def second() -> None:
        created.wait(10)
        with database.begin() as session:
            names.append(ensure_shop(session, settings).name)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    threads[1].join(0.5)
    release.set()
    for thread in threads:
        thread.join(10)

    assert names == ["Bean Club", "Bean Club"]
    with database.read() as session:
        assert session.get_one(Shop, 1).name == "Bean Club"
