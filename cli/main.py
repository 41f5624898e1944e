"""`yagu` console script: one click group, one module per command group."""
import importlib

import click

COMMAND_MODULES = ("rules", "window", "notice", "serve")


@click.group(help="牙谷惠企政策资格判定引擎（yagu）")
def main() -> None:
    pass


for _name in COMMAND_MODULES:
    importlib.import_module(f"cli.{_name}").register(main)

if __name__ == "__main__":
    main()
