"""Dispatch due notices to the local Twilio-like server at a set rate, in worker processes.

Run as ``python -m bench.dispatch`` inside a prepared environment (the parent sets
DATABASE_URL, TWILIO_*, SMS_RATE_PER_SECOND...): builds the app like
`flask --app wsgi worker` does, sends until nothing is due, and prints one JSON
line with what it sent and the CPU the sending used (start-up excluded).
"""

from __future__ import annotations

import json
import resource

from bot import create_app
from bot.worker import Worker


def main() -> None:
    """Send every due text, then report."""
    worker = Worker(create_app())
    ready = _cpu()
    sent = worker.dispatcher.run_once()
    print(json.dumps({"sent": sent, "cpu_s": round(_cpu() - ready, 3)}))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
