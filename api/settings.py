"""Runtime settings of the HTTP service, read once from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    database_url: str = field(
        default_factory=lambda: os.environ.get("YAGU_DATABASE_URL", "sqlite:///./yagu.db"))
    # Request bodies are refused while streaming once they pass these sizes.
    max_body_bytes: int = field(default_factory=lambda: _int_env("YAGU_MAX_BODY_BYTES", 2 * 1024 * 1024))
    max_upload_bytes: int = field(default_factory=lambda: _int_env("YAGU_MAX_UPLOAD_BYTES", 20 * 1024 * 1024))
    # Structural limits on JSON documents, checked before any model validation.
    max_json_depth: int = field(default_factory=lambda: _int_env("YAGU_MAX_JSON_DEPTH", 12))
    max_object_keys: int = field(default_factory=lambda: _int_env("YAGU_MAX_OBJECT_KEYS", 200))
    max_certificates: int = field(default_factory=lambda: _int_env("YAGU_MAX_CERTIFICATES", 500))
    max_violations: int = field(default_factory=lambda: _int_env("YAGU_MAX_VIOLATIONS", 500))
    # Run the store's migrations when the app starts (yagu serve does; tests may too).
    migrate_on_start: bool = True
    cookie_secure: bool = field(default_factory=lambda: os.environ.get("YAGU_COOKIE_SECURE", "") == "1")
