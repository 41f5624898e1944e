"""HTTP layer: FastAPI routes (thin), web pages, auth. Entry point: `api.app.create_app`."""
