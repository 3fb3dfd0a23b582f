"""gunicorn settings for `gunicorn -c gunicorn.conf.py wsgi:app` (values from the environment)."""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
# Webhooks are short and mostly wait for their commit: enough threads that a process
# keeps reading requests while others wait on the database.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "16"))
timeout = 30
graceful_timeout = 30
keepalive = 5
# Refuse absurd request lines and headers before Flask sees them.
limit_request_line = 8190
limit_request_fields = 100
# ACCESS_LOG="" switches the access log off (benchmarks); "-" is stdout.
accesslog = os.environ.get("ACCESS_LOG", "-") or None
errorlog = "-"
# Only the proxy in front of us may set X-Forwarded-*; see PROXY_FIX_HOPS.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
os.environ.setdefault("LOG_FORMAT", "json")


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Drop a dead worker's metric files when metrics are shared between processes."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
