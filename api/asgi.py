"""ASGI entry point for uvicorn (`api.asgi:app`); migrations are run by `yagu serve`."""
import os

from api.app import create_app
from api.settings import Settings

app = create_app(Settings(migrate_on_start=os.environ.get("YAGU_MIGRATE_ON_START", "0") == "1"))
