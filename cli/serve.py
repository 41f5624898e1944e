"""`yagu serve` and `yagu token …`."""
from __future__ import annotations

import os
import sys

import click
import uvicorn

from api.settings import Settings
from cli.common import db_handle, fail, run
from engine.vocabulary import cn_time
from notices.settings import SettingsError, load_settings
from store import tokens
from store.db import Database, masked


def register(main: click.Group) -> None:
    @main.command("serve", help="启动 HTTP 服务（网页、接口、接口文档 /docs）。数据库取自 YAGU_DATABASE_URL，"
                                "默认为数据目录（YAGU_DATA_DIR，默认 ~/.local/share/yagu）中的 yagu.db")
    @click.option("--host", default="127.0.0.1", show_default=True, help="监听地址")
    @click.option("--port", default=int(os.environ.get("PORT") or 8000), show_default=True, type=int,
                  help="监听端口（也可用环境变量 PORT）")
    @click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="HTTP 工作进程数")
    @click.option("--log-level", default="info", show_default=True,
                  type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="日志级别")
    def serve(host, port, workers, log_level):
        settings = Settings()
        try:
            Database(settings.database_url).upgrade()       # once here, not in every worker process
        except Exception as e:  # noqa: BLE001 — one line, not a trace
            fail(f"数据库 {masked(settings.database_url)} 不可用或不可写：{str(e).splitlines()[0][:200]}")
        try:
            unset = load_settings().unset()
        except SettingsError as e:
            fail(str(e))
        if unset:
            click.secho(f"提示：文书设置尚未填写：{'、'.join(unset)}（rules/notice-settings.yaml，或 YAGU_NOTICE_SETTINGS "
                        "指向的文件）；填写前不能出具正式告知书，自测不受影响。", fg="yellow", err=True)
        click.echo(f"牙谷惠企政策服务：http://{host}:{port}/　接口文档：http://{host}:{port}/docs　"
                   f"数据库：{masked(settings.database_url)}", err=True)
        uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, log_level=log_level,
                    proxy_headers=False, server_header=False, access_log=log_level == "debug")

    @main.group("token", help="工作人员令牌：新建、列出、吊销")
    def token():
        pass

    @token.command("create", help="新建令牌；令牌只显示这一次（最后一行），数据库只存其哈希")
    @click.option("--role", required=True, type=click.Choice(list(tokens.ROLES)), help="角色：staff 经办人员，admin 管理员")
    @click.option("--label", default="命令行建立", show_default=True, help="用途说明，例如使用人")
    @click.option("--days", default=tokens.DEFAULT_DAYS, show_default=True, type=int,
                  help=f"有效期（天，1 至 {tokens.MAX_DAYS}）；到期后令牌不能再使用，需新建")
    def token_create(role, label, days):
        view, value = run(tokens.create_token, db_handle(), role, label, days=days, actor="命令行")
        click.echo(f"已建立{view.role_text}令牌（编号 {view.id}，{cn_time(view.expires_at)} 到期；"
                   f"只显示这一次，请妥善保存）：", err=True)
        sys.stderr.flush()          # the notice before the token, also when both go to one file
        click.echo(value)
        sys.stdout.flush()

    @token.command("list", help="列出令牌（不显示令牌本身）")
    def token_list():
        for t in run(tokens.list_tokens, db_handle()):
            click.echo(f"{t.id:4}  {t.role_text}  {t.label}  建立于 {cn_time(t.created_at)}  {t.state_text}")

    @token.command("revoke", help="吊销令牌（它登录的控制台会话立即失效）")
    @click.argument("token_id", type=int, metavar="令牌编号")
    def token_revoke(token_id):
        run(tokens.revoke_token, db_handle(), token_id, actor="命令行")
        click.echo(f"令牌 {token_id} 已吊销")
