"""Runtime settings of the HTTP service, read once from the environment (README: 配置)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from store.db import database_url


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        raise SystemExit(f"环境变量 {name} 必须是整数，不能是“{raw}”") from None


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=database_url)
    # Request bodies are refused while streaming once they pass these sizes.
    max_body_bytes: int = field(default_factory=lambda: _int_env("YAGU_MAX_BODY_BYTES", 2 * 1024 * 1024))
    max_upload_bytes: int = field(default_factory=lambda: _int_env("YAGU_MAX_UPLOAD_BYTES", 20 * 1024 * 1024))
    # Structural limits on JSON documents, checked before any model validation.
    max_json_depth: int = field(default_factory=lambda: _int_env("YAGU_MAX_JSON_DEPTH", 12))
    max_object_keys: int = field(default_factory=lambda: _int_env("YAGU_MAX_OBJECT_KEYS", 200))
    # Run the store's migrations when the app starts (yagu serve migrates once before).
    migrate_on_start: bool = True
    # Run background jobs in this process (SQLite always; PostgreSQL unless external workers).
    run_jobs: bool = True
    cookie_secure: bool = field(default_factory=lambda: os.environ.get("YAGU_COOKIE_SECURE", "") == "1")
