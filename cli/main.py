"""`yagu` console script: one click group, one module per command group; Chinese throughout."""
from importlib.metadata import version

import click

from cli import i18n

i18n.install()

from cli import notice, rules, serve, window  # noqa: E402 — after click speaks Chinese


@click.group(help="牙谷惠企政策资格判定引擎（yagu）：规则、自测、申报批次、告知书、服务。用“yagu 命令 --help”查看各命令。")
@click.version_option(version("yagu"), "--version", prog_name="yagu", help="显示版本并退出。")
@click.help_option("--help", "-h", help="显示本帮助并退出。")
def main() -> None:
    pass


for _module in (rules, window, notice, serve):
    _module.register(main)

if __name__ == "__main__":
    main()
