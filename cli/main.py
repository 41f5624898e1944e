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


def _say_options_in_chinese(cmd: click.Command) -> None:
    """Usage lines read `yagu window import [选项] 批次编号 文件`, not [OPTIONS]."""
    cmd.options_metavar = "[选项]"
    if isinstance(cmd, click.Group):
        cmd.subcommand_metavar = "命令 [参数]..."
        for sub in cmd.commands.values():
            _say_options_in_chinese(sub)


_say_options_in_chinese(main)

if __name__ == "__main__":
    main()
