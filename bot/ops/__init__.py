"""Operations: JSON logs, metrics, security headers, error pages, health and the outbox."""
