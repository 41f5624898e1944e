"""Chinese for click's own words (Usage, Options, error messages): the CLI speaks one language.

click translates its strings through `gettext`; this module gives it a catalogue of its own
messages, installed once by `cli.main` before any command runs.
"""
from __future__ import annotations

import click
import click.core
import click.decorators
import click.exceptions
import click.formatting
import click.parser
import click.termui
import click.types
import click.utils

ZH = {
    "Usage:": "用法：", "Options": "选项", "Commands": "命令", "Positional arguments": "参数",
    "Show this message and exit.": "显示本帮助并退出。", "Show the version and exit.": "显示版本并退出。",
    "%(prog)s, version %(version)s": "%(prog)s 版本 %(version)s",
    "Error: {message}": "错误：{message}", "Try '{command} {option}' for help.": "用“{command} {option}”查看帮助。",
    "Invalid value for {param_hint}: {message}": "{param_hint} 的取值无效：{message}",
    "Invalid value: {message}": "取值无效：{message}", "Missing argument": "缺少参数", "Missing option": "缺少选项",
    "Missing parameter": "缺少参数", "Missing {param_type}": "缺少{param_type}", "Missing command.": "缺少命令。",
    "Missing parameter: {param_name}": "缺少参数：{param_name}", "argument": "参数", "option": "选项",
    "No such command {name!r}.": "没有命令“{name}”。", "No such option {name!r}.": "没有选项“{name}”。",
    "No such option: {name}": "没有选项：{name}", "Option {name!r} does not take a value.": "选项“{name}”不接受取值。",
    "Option {name!r} requires an argument.": "选项“{name}”需要一个值。",
    "Option {name!r} requires {nargs} arguments.": "选项“{name}”需要 {nargs} 个值。",
    "Got unexpected extra argument ({args})": "多余的参数（{args}）", "Got unexpected extra arguments ({args})": "多余的参数（{args}）",
    "Did you mean {possibility}?": "是否指 {possibility}？", "(Did you mean one of: {possibilities}?)": "（是否指：{possibilities}？）",
    "{value!r} is not {choice}.": "“{value}”无效，应为 {choice}。", "{value!r} is not one of {choices}.": "“{value}”无效，应为以下之一：{choices}。",
    "{value!r} is not a valid {number_type}.": "“{value}”不是有效的{number_type}。", "integer": "整数", "float": "数字",
    "{value} is not in the range {range}.": "{value} 不在范围 {range} 内。",
    "{value!r} does not match the format {format}.": "“{value}”不符合格式 {format}。",
    "{value!r} does not match the formats {formats}.": "“{value}”不符合格式 {formats}。",
    "{name} {filename!r} does not exist.": "{name}“{filename}”不存在。", "{name} {filename!r} is a directory.": "{name}“{filename}”是目录。",
    "{name} {filename!r} is a file.": "{name}“{filename}”是文件。", "{name} {filename!r} is not readable.": "{name}“{filename}”不可读。",
    "{name} {filename!r} is not writable.": "{name}“{filename}”不可写。", "File": "文件", "Directory": "目录", "Path": "路径",
    "file": "文件", "directory": "目录", "path": "路径",
    "Could not open file {filename!r}: {message}": "无法打开文件“{filename}”：{message}",
    "Aborted!": "已取消。", "Do you want to continue?": "是否继续？", "Error: invalid input": "错误：输入无效",
    "default: {default}": "默认：{default}", "env var: {var}": "环境变量：{var}", "required": "必填",
    "Confirm the action without prompting.": "不再确认，直接执行。", "(dynamic)": "（动态）", "deprecated": "已弃用",
    "Repeat for confirmation": "再输入一次确认", "Error: The two entered values do not match.": "错误：两次输入不一致。",
}


def _(message: str) -> str:
    return ZH.get(message, message)


def _n(singular: str, plural: str, n: int) -> str:
    return _(singular if n == 1 else plural)


def install() -> None:
    for mod in (click.core, click.decorators, click.exceptions, click.formatting, click.parser, click.termui,
                click.types, click.utils):
        if hasattr(mod, "_"):
            mod._ = _
        if hasattr(mod, "ngettext"):
            mod.ngettext = _n
