"""One word per concept: every Chinese word a reader sees for a status, an outcome, a state or a
domain term comes from here, and docs/glossary.md is generated from `GLOSSARY`.

Pages, notices, exports and the CLI import these tables; none of them spells a status or a
state on its own. Number and date formatting for readers lives here too, for the same reason.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

# --- results -----------------------------------------------------------------------------
STATUS = {
    "eligible": "符合条件",
    "ineligible": "不符合条件",
    "needs_info": "需补充信息",
    "not_in_force": "不在政策有效期内",
}
OUTCOME = {"pass": "满足", "fail": "不满足", "unknown": "待补充"}
OUTCOME_MARK = {"pass": "✓", "fail": "✗", "unknown": "?"}
KIND = {"grant": "资金支持", "tax": "税收优惠", "guidance": "办理指引"}

PROVISIONAL_AMOUNT = "参考金额，以当期申报通知为准"
PROVISIONAL_CRITERION = "本条件为暂定，以当期申报通知为准"
PROVISIONAL_VALUE = "（暂定值）"         # after a parameter's value no official text confirms
NOT_PROVIDED = "未提供"
YES, NO = "是", "否"

# --- the window and its applications ------------------------------------------------------
WINDOW = "申报批次"
WINDOW_STATE = {
    "open": "受理中",
    "evaluated": "已判定",
    "publicity": "公示中",
    "closed": "已关闭",
}
CHANNEL = {"web": "网上申报", "import": "批量导入", "api": "接口"}     # how an application came in

APPLICATION_STATE = {
    "received": "已受理",
    "judged": "已判定",
    "correction": "待补正",
    "corrected": "已补正",
    "publicized": "公示中",
    "awarded": "已兑现",
    "refused": "不予支持",
    "failed": "判定出错",
}
ROLE = {"staff": "经办人员", "admin": "管理员"}

# --- the glossary (docs/glossary.md) ---------------------------------------------------------
GLOSSARY: list[tuple[str, str, str]] = [
    ("企业画像", "profile", "一家企业的全部事实；未填写的事实为“未知”，不等于“否”或 0"),
    ("事项", "benefit", "一项惠企政策（资金支持、税收优惠或办理指引），由 rules/benefits/ 中的一个规则文件定义"),
    ("资金支持", "grant", "园区在申报批次中判定、兑现的资金；进入拟支持名单和兑现台账"),
    ("税收优惠", "tax preference", "企业自行判别、申报享受的税收优惠；不进入资金支持的名单和统计"),
    ("办理指引", "guidance", "既非资金也非税收的事项（如首违不罚、上市后备企业资源库）：说明适用的条件和情形，以主管部门认定为准"),
    ("适用情形", "route", "有多种处理结果的事项（如不予处罚、从轻或减轻处罚）中，按先后顺序第一个条件全部满足的情形"),
    ("怎样才能符合", "suggestion", "对不满足或待补充的条件，说明离要求还差多少、何时能满足、先补充哪些信息；供参考，不是承诺"),
    ("条件", "criterion", "事项的一条资格条件，附法律依据；判定结果为 满足 / 不满足 / 待补充"),
    ("满足", "pass", "条件成立"),
    ("不满足", "fail", "条件不成立"),
    ("待补充", "unknown", "条件所需的事实未提供，无法判断；从不当作“不满足”"),
    ("符合条件", "eligible", "事项的全部条件均满足"),
    ("不符合条件", "ineligible", "至少一条条件不满足"),
    ("需补充信息", "needs_info", "没有不满足的条件，但至少一条待补充"),
    ("不在政策有效期内", "not_in_force", "判定日期不在事项的有效期内"),
    ("自测", "self-check", "企业自行填写画像查看结果，仅供参考，不是决定"),
    ("申报批次", "window", "一年两次的集中申报；有受理期、覆盖期和判定日"),
    ("申报", "application", "企业在一个申报批次内提交的一份申请，凭查询码查看"),
    ("查询码", "access code", "受理时发给企业的一次性代码，用于查看本企业的申报"),
    ("判定", "evaluation", "规则引擎对申报逐项、逐条给出结论"),
    ("一次性告知书", "one-time notice", "一次告知企业全部不满足的条件、待补充的信息和缺少的材料"),
    ("补正", "correction", "企业在期限内补充信息或材料后重新判定"),
    ("复核", "review", "工作人员确认或改变判定结论，须写明理由"),
    ("公示", "publicity", "拟支持名单公开若干个工作日，接受异议"),
    ("拟支持名单", "proposed award list", "公示中的支持名单"),
    ("兑现台账", "award ledger", "已兑现的支持记录；同一注册证只支持一次"),
    ("不予支持告知书", "non-support notice", "资金支持事项最终不符合条件时发出，写明理由和救济途径"),
    ("自行判别", "tax self-assessment", "税收优惠由企业自行判别、申报享受、相关资料留存备查，不由园区决定"),
    ("留存备查资料", "records to keep", "享受税收优惠须保存备查的资料及保存期限"),
    ("参考金额", "provisional amount", "没有正式文件规定的金额，以当期申报通知为准"),
    ("暂定条件", "provisional criterion", "工作方案未规定、由兑现轮次通知确定的条件，以当期申报通知为准"),
    ("暂定值", "provisional value", "没有正式文件确认的门槛、比例等取值（规则文件中 provisional: true），结果中标“（暂定值）”，以正式文件为准"),
    ("容缺", "deferrable material", "可先签署承诺、在期限内后补的材料（容缺受理、告知承诺、容缺后补）"),
    ("推定口径", "interpretation", "文件未明确、本系统按说明的理解判断的地方（如期间的起算日），规则文件和结果中写明"),
    ("免申即享", "proactive award", "未申报但已知符合条件的企业名单"),
    ("规则版本", "ruleset version", "规则文件内容与引擎版本的哈希；每个判定都记录它"),
    ("令牌", "API token", "工作人员登录控制台、调用接口的凭据；按角色（经办人员、管理员）建立，有效期满即到期，可随时吊销"),
]


# --- formatting for readers ------------------------------------------------------------------
def ruleset_text(version: str) -> str:
    """A ruleset version as readers see it: the rules' hash, then the engine's versions in words
    (5e1d9e…（yagu 0.1.0，编译第1版，durable-rules 2.0.28））."""
    digest, _, engine = (version or "").partition("-")
    m = re.fullmatch(r"yagu(?P<y>[^+]+)\+c(?P<c>[^+]+)\+durable_rules(?P<d>.+)", engine)
    if not m:
        return digest or version
    return f"{digest}（yagu {m['y']}，编译第{m['c']}版，durable-rules {m['d']}）"


def ruleset_ref(version: str) -> str:
    """A ruleset version as an enterprise quotes it to staff: the first 8 characters of the
    rules' hash (staff's pages and the records name it whole, with the engine's versions)."""
    return (version or "").partition("-")[0][:8]


def cn_date(d: dt.date | str | None) -> str:
    """2026年3月31日."""
    if d is None or d == "":
        return ""
    if isinstance(d, str):
        d = dt.date.fromisoformat(d[:10])
    return f"{d.year}年{d.month}月{d.day}日"


BEIJING = ZoneInfo("Asia/Shanghai")     # every moment a reader sees


def cn_time(at: dt.datetime | None, short: bool = False) -> str:
    """A stored moment in Beijing time, as readers write it: 2026年11月30日 09:05 (short: 11月30日 09:05).
    SQLite returns stored UTC moments without their zone."""
    if at is None:
        return ""
    local = (at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)).astimezone(BEIJING)
    day = f"{local.month}月{local.day}日" if short else f"{local.year}年{local.month}月{local.day}日"
    return f"{day} {local:%H:%M}"


_ISO_IN_TEXT = re.compile(r"(?<![0-9])([0-9]{4})-([0-9]{2})-([0-9]{2})(?![0-9])")


def cn_dates_in(text: str | None) -> str | None:
    """Dates a rule file's note writes as 2023-02-01, as readers write them (2023年2月1日)."""
    if not text:
        return text
    return _ISO_IN_TEXT.sub(lambda m: f"{int(m[1])}年{int(m[2])}月{int(m[3])}日", text)


def money(v: Any) -> str:
    """1,800,000元 / 1,800,000.50元."""
    if v is None:
        return NOT_PROVIDED
    text = f"{Decimal(str(v)):,.2f}"
    return (text[:-3] if text.endswith(".00") else text) + "元"


def money_short(v: float) -> str:
    """Thresholds as a policy writes them: 300万元, 1亿元, 500,000元, 10万亿元."""
    if v >= 1e12 and v % 1e11 == 0:
        return f"{v / 1e12:g}万亿元"
    if v >= 1e8 and v % 1e7 == 0:
        return f"{v / 1e8:g}亿元"
    if v >= 1e4 and v % 100 == 0:
        return f"{v / 1e4:g}万元"
    return money(v)


def percent(v: Any) -> str:
    """0.6 → 60%; 0.123456 → 12.3456%."""
    if v is None:
        return NOT_PROVIDED
    text = f"{Decimal(str(v)) * 100:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


def number(v: Any, unit: str | None = None) -> str:
    if v is None:
        return NOT_PROVIDED
    if unit == "元":
        return money(v)
    if unit == "比例":
        return percent(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    text = f"{v:,}" if isinstance(v, int) else f"{Decimal(str(v)):,f}"
    return text + ({"月": "个月"}.get(unit, unit) or "")


def yes_no(v: bool | None) -> str:
    return NOT_PROVIDED if v is None else YES if v else NO
