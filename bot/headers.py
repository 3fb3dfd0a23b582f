"""Security headers on every response: no inline script, no framing, no sniffing."""

from __future__ import annotations

from flask import Flask, Response

from bot.config import Settings

#: Pages load their own CSS and JS only; nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)


def init_app(app: Flask, settings: Settings) -> None:
    """Add the headers after every request."""
    https = (settings.public_base_url or "").startswith("https://")

    @app.after_request
    def secure(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if https:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
