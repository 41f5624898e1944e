"""Rendering the web pages: one Jinja2 environment whose globals are the vocabulary and the
reader-facing formatting, so no page spells a status or formats a value on its own."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from engine import vocabulary as vocab
from store.jobs import KIND_TEXT, STATE_TEXT as JOB_STATE
from store.notices import KINDS as NOTICE_KINDS

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals.update(
    STATUS=vocab.STATUS, OUTCOME=vocab.OUTCOME, OUTCOME_MARK=vocab.OUTCOME_MARK, KIND=vocab.KIND,
    WINDOW_STATE=vocab.WINDOW_STATE, APPLICATION_STATE=vocab.APPLICATION_STATE, ROLE=vocab.ROLE,
    PROVISIONAL_AMOUNT=vocab.PROVISIONAL_AMOUNT, PROVISIONAL_CRITERION=vocab.PROVISIONAL_CRITERION,
    JOB_STATE=JOB_STATE, JOB_KIND=KIND_TEXT, NOTICE_KINDS=NOTICE_KINDS,
    money=vocab.money, cn_date=vocab.cn_date, percent=vocab.percent,
)


def page(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    resp = templates.TemplateResponse(request, name, ctx, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    return resp
