"""`yagu serve` and `yagu token ...` commands."""
import sys

import click


def register(main):
    """Attach this module's commands to the `yagu` group."""

    @main.command("serve", help="启动 HTTP 服务（网页、接口文档 /docs）。数据库取自 YAGU_DATABASE_URL，默认 ./yagu.db")
    @click.option("--host", default="127.0.0.1", show_default=True, help="监听地址")
    @click.option("--port", default=8000, show_default=True, type=int, help="监听端口")
    @click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
                  help="工作进程数")
    @click.option("--log-level", default="info", show_default=True,
                  type=click.Choice(["critical", "error", "warning", "info", "debug"]))
    def serve(host, port, workers, log_level):
        import uvicorn

        from api.settings import Settings
        from store.db import Database

        settings = Settings()
        # Migrate once here, not in every worker process.
        try:
            Database(settings.database_url).upgrade()
        except Exception as e:  # a clear message instead of a trace
            raise click.ClickException(f"数据库迁移失败（{settings.database_url}）：{e}")
        click.echo(f"牙谷惠企政策服务：http://{host}:{port}/　接口文档：http://{host}:{port}/docs", err=True)
        uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, log_level=log_level,
                    proxy_headers=False, server_header=False, access_log=log_level == "debug")

    @main.group("token", help="工作人员令牌")
    def token():
        pass

    @token.command("create", help="新建令牌；令牌只显示这一次（最后一行），数据库只存其哈希")
    @click.option("--role", required=True, type=click.Choice(["staff", "admin"]), help="角色")
    @click.option("--label", default="", help="备注，例如使用人")
    def token_create(role, label):
        from store.db import default_database
        from store.tokens import create_token

        db = default_database()
        db.upgrade()
        value = create_token(role, label, db=db, actor="cli")
        click.echo(f"已创建{'管理员' if role == 'admin' else '经办人员'}令牌（只显示这一次，请妥善保存）：", err=True)
        click.echo(value)
        sys.stdout.flush()
