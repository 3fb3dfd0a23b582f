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


def security_headers(settings: Settings) -> list[tuple[str, str]]:
    """The headers every response carries (HSTS only when we are reached over TLS)."""
    wanted = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
    ]
    if (settings.public_base_url or "").startswith("https://"):
        wanted.append(("Strict-Transport-Security", "max-age=31536000"))
    return wanted


def init_app(app: Flask, settings: Settings) -> None:
    """Add the headers after every request; a view that set one of them keeps its own."""
    wanted = security_headers(settings)

    @app.after_request
    def secure(response: Response) -> Response:
        # One pass over the response's headers, not one search per header: this runs
        # on every webhook.
        present = {name.lower() for name, _ in response.headers}
        response.headers.extend(
            [(name, value) for name, value in wanted if name.lower() not in present]
        )
        return response
