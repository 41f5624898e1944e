"""Public endpoints: health, rules, eligibility, tax self-assessment, an enterprise's application."""
from __future__ import annotations

import json
from typing import Literal, Optional
from urllib.parse import quote

from fastapi import APIRouter, Form, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.limits import JsonRoute
from api.runtime import Runtime
from api.schemas import (APPLICATION_NOTICES, REVISION_TEXT, ApplicationId, EligibilityRequest, Health, NoticeKindId, Revision, RuleId,
                         RuleSummary, TaxSelfAssessmentRequest, Text, error_responses, file_response)
from engine.evaluator import UnknownBenefit
from engine.profile import ProfileError, parse_profile, shanghai_today
from engine.results import EligibilityResponse, TaxSelfAssessment
from engine.ruleschema import BenefitFile
from store import applications, cases
from store.cases import ApplicationDetail
from store.db import Database
from store.errors import RowProblem

router = APIRouter(route_class=JsonRoute)


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


def probe_storage(db: Database) -> None:
    """Raise the database's error unless it answers and takes writes. SQLite opens a read-only
    file without complaint and refuses only the first write, so one is tried and rolled back."""
    with db.engine.connect() as c:
        c.execute(text("SELECT 1"))
        if db.is_sqlite:
            c.execute(text("CREATE TABLE yagu_health_probe (x INTEGER)"))
        c.rollback()


def _json(model) -> Response:
    # the engine's records serialise themselves: the contract response, no second validation
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/healthz", summary="健康检查", tags=["公共"], response_model=Health,
            description="服务与数据库的健康检查：试写数据库（随即撤销），数据库可读写时返回 200；"
                        "数据库只读、已满或无法连接时返回 503，并说明原因。",
            responses=error_responses(503))
async def healthz(request: Request):
    rt = _rt(request)
    await run_in_threadpool(probe_storage, rt.db)
    return Health(status="ok", database="ok", ruleset_version=rt.evaluator.ruleset_version)


@router.get("/v1/rules", summary="事项列表", tags=["公共"], response_model=list[RuleSummary],
            description="全部事项：编号、名称、类型（grant 资金支持 / tax 税收优惠）、判定单位"
                        "（enterprise 企业 / certificate 注册证）、有效期和依据文件，按 rules/index.yaml 的顺序。")
async def list_rules(request: Request):
    out = []
    for b in _rt(request).evaluator.book.benefits.values():
        s = b.spec
        tos = [p.to for p in s.in_force]
        out.append(RuleSummary(id=s.id, title=s.title, kind=s.kind, unit=s.unit,
                               in_force={"from": min(p.from_ for p in s.in_force),
                                         "to": None if None in tos else max(tos)},
                               legal_basis=[d.model_dump(mode="json") for d in s.legal_basis]))
    return out


@router.get("/v1/rules/{rule_id}", summary="事项详情", tags=["公共"], response_model=BenefitFile,
            description="一个事项的完整规则文件：各项条件（编号、文字、依据）、所需材料、带生效日期和出处的参数、"
                        "示例。未知编号返回 404。", responses=error_responses(404))
async def get_rule(rule_id: RuleId, request: Request):
    b = _rt(request).evaluator.book.benefits.get(rule_id)
    if b is None:
        raise ApiError(404, f"未找到事项：{rule_id[:64]}")
    return JSONResponse(b.spec.model_dump(mode="json", by_alias=True))


@router.post("/v1/eligibility", summary="惠企政策资格自测", tags=["公共"], response_model=EligibilityResponse,
             description="提交企业画像，逐项判定每个事项的每一条件（满足 / 不满足 / 待补充），给出结论（eligible "
                         "符合条件、ineligible 不符合条件、needs_info 需补充信息、not_in_force 不在政策有效期内）、"
                         "参考金额、缺少的信息和材料；不符合或需补充的事项附 suggestions（怎样才能符合：离门槛还差多少、"
                         "哪条记录何时移出追溯期、先补充哪些信息可判定最多条件；给出单一取值 value 时，改为该值后该条件满足且"
                         "其他条件不变）；有多种处理情形的事项（如首违不罚）给出适用的 route。画像有误时返回 422，一次列出全部"
                         "问题；规则引擎未能判定时返回 500，服务照常运行。",
             responses=error_responses(400, 413, 415, 422, 500, 503))
async def eligibility(body: EligibilityRequest, request: Request):
    rt = _rt(request)

    def run() -> EligibilityResponse:
        ev = rt.evaluator
        unknown = [b for b in body.benefits or [] if b not in ev.book.benefits]
        try:
            p = parse_profile(body.profile, ev.registry)
        except ProfileError as e:           # and the benefits it names that do not exist: all at once
            if not unknown:
                raise
            said = [("benefits", str(UnknownBenefit(unknown, ev.book.benefits)))]
            said += [(f"profile.{x.path}" if x.path else "profile", x.message) for x in e.problems]
            raise ApiError(422, f"提交的数据有误，共 {len(said)} 处问题", said) from None
        awarded = rt.ledger_for(p)
        resp = ev.evaluate(p, as_of=body.as_of or shanghai_today(), benefits=body.benefits,
                           awarded=awarded, tax_year=body.tax_year)
        return ev.with_suggestions(p, resp, awarded=awarded)
    return _json(await run_in_threadpool(run))


@router.post("/v1/tax/self-assessment", summary="税收优惠自行判别", tags=["公共"],
             response_model=TaxSelfAssessment,
             description="按纳税年度判别各项税收优惠（自行判别、申报享受、相关资料留存备查），列出留存备查资料及"
                         "保存期限，并指出只能选择其一的优惠及其取舍。",
             responses=error_responses(400, 413, 415, 422, 500, 503))
async def tax_self_assessment(body: TaxSelfAssessmentRequest, request: Request):
    ev = _rt(request).evaluator
    return _json(await run_in_threadpool(lambda: ev.tax_self_assessment(parse_profile(body.profile, ev.registry),
                                                                         body.tax_year)))


# the access code, in a header (a URL stays in proxy logs); its absence is said by _own
AccessCode = Header(None, description="受理时发放的查询码", min_length=1, max_length=64)


@router.get("/v1/applications/{application_id}", summary="凭查询码查看申报", tags=["企业"],
            response_model=ApplicationDetail,
            description="企业凭申报编号和查询码查看本企业的申报：办理状态、资金支持判定（每项条件、缺少的信息和"
                        "材料、金额）、税收优惠自行判别结果、告知书和补正期限。查询码错误与编号不存在的回答完全相同"
                        "（404）。查询码请放在请求头 X-Access-Code 中：网址会留在代理和网关的日志里（仍接受查询参数 "
                        "access_code，以兼容早先的调用方）。网页 /application 用登录表单提交查询码。",
            responses=error_responses(404, 422))
async def get_application(
        application_id: ApplicationId, request: Request,
        x_access_code: Optional[Text] = AccessCode,
        access_code: Optional[Text] = Query(None, min_length=1, max_length=64,
                                            description="受理时发放的查询码（宜改用请求头 X-Access-Code）")):
    rt = _rt(request)
    app_id = await _own(rt, application_id, x_access_code or access_code)
    return await run_in_threadpool(lambda: cases.detail(rt.db, app_id).for_enterprise())


async def _own(rt: Runtime, application_id: str, access_code: Optional[str]) -> str:
    """The application the access code opens (its id as stored); 404 alike for an unknown id
    and a wrong code."""
    if not access_code:
        raise ApiError(422, "缺少查询码", [("X-Access-Code", "请在请求头 X-Access-Code 中提供查询码")])
    if not await run_in_threadpool(applications.check_access_code, rt.db, application_id, access_code):
        raise ApiError(404, "未找到该申报，或查询码不正确")
    return application_id.strip().upper()


def _json_field(raw: str, name: str, kind: type, problems: list[RowProblem]):
    """A form field holding JSON; None, and a problem added, when it is not a `kind`."""
    try:
        value = json.loads(raw or ("{}" if kind is dict else "[]"))
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, kind):
        problems.append(RowProblem("应为 JSON " + ("对象" if kind is dict else "数组"), path=name))
        return None
    return value


@router.post("/v1/applications/{application_id}/correction", summary="提交补正", tags=["企业"],
             response_model=ApplicationDetail,
             description="企业凭查询码提交一次性告知书所要求的补正（与网页 /application 的补正表单相同）：一次提交、"
                         "提交后立即重新判定，返回判定后的申报。multipart/form-data：`facts` 为 JSON 对象（画像路径 → "
                         "取值，路径和取值见 correction.facts 与 docs/profile.md，如 "
                         "`{\"device_registrations[0].origin\": \"self_developed\", \"violations\": []}`）；"
                         "每份材料一个文件部分，字段名为 `file:事项编号|注册证编号|材料编号`（按企业的材料注册证编号为空，"
                         "见 correction.materials）；`promises` 为 JSON 数组，每项 `{benefit_id, subject_id, "
                         "material_id, signer}`，对可容缺的材料签署告知承诺；`complete` 为 true（默认）时，所要求的"
                         "每项信息和材料都须提供或承诺，缺哪项就列出哪项（422），确实无法提供的以 false 提交。"
                         "补正中填写的情况须附一次性告知书为它所列的证明材料（可容缺的可签署承诺）：填写了而没有证明的，"
                         "无论 `complete` 是否为 false，都列为问题（422）。"
                         "有任何问题时一次列出全部（422），什么也不保存；不在补正期内返回 409。"
                         "已提交的补正原样再次提交（如超时后重试）时，返回该补正提交后的申报，不再记录一次；"
                         "内容不同的再次提交返回 409。",
             responses=error_responses(404, 409, 413, 415, 422),
             openapi_extra={"x-multipart": True})      # its files are read from the form itself
async def submit_correction(
        application_id: ApplicationId, request: Request, x_access_code: Optional[Text] = AccessCode,
        facts: Text = Form("{}", description="JSON 对象：画像路径 → 取值"),
        promises: Text = Form("[]", description="JSON 数组：容缺承诺 {benefit_id, subject_id, material_id, signer}"),
        complete: bool = Form(True, description="所要求的每项都须提供或承诺；false：其余的无法提供"),
        statement: Optional[Text] = Form(None, max_length=2000,
                                         description="说明（可选）：对不符合的条件有异议的理由，供工作人员复核"),
        revision: Optional[Revision] = Form(None, description=REVISION_TEXT)):
    rt = _rt(request)
    app_id = await _own(rt, application_id, x_access_code)
    # Every problem of the form at once: one that the envelope has goes along with the facts'
    found: list[RowProblem] = []
    facts_in = _json_field(facts, "facts", dict, found)
    promised = _json_field(promises, "promises", list, found) or []
    form = await request.form(max_files=50, max_fields=60)
    uploads = [(*key[5:].split("|"), f.filename or "file", await f.read()) for key, f in form.multi_items()
               if key.startswith("file:") and not isinstance(f, str) and len(key[5:].split("|")) == 3]
    readable = [p for p in promised if isinstance(p, dict) and str(p.get("signer") or "").strip()]
    if len(readable) < len(promised):
        found.append(RowProblem("每项应为 {benefit_id, subject_id, material_id, signer}，signer 为承诺人姓名",
                                path="promises"))
    signed = {(str(p.get("benefit_id", "")), str(p.get("subject_id", "")), str(p.get("material_id", ""))):
              str(p["signer"]) for p in readable}
    return await run_in_threadpool(lambda: cases.submit_correction(
        rt.db, app_id, facts_in or {}, uploads, actor=f"企业（申报 {app_id}，接口）", revision=revision,
        found=found, promises=signed, complete=complete and facts_in is not None,  # unread facts: not "left out"
        statement=statement).for_enterprise())


@router.get("/v1/applications/{application_id}/notices/{kind}", summary="下载本企业的告知书", tags=["企业"],
            response_class=Response,
            description="企业凭查询码下载本申报的告知书（一次性告知书、兑现通知书、不予支持告知书、税收优惠自行判别"
                        "结果；有哪些见申报的 notices 和办理状态）。正式文书第一次下载时编号出具。"
                        "该申报没有这份告知书时返回 409，写明原因。",
            responses={**file_response("application/pdf", "text/html", description="告知书"),
                       **error_responses(404, 409, 422)})
async def application_notice(application_id: ApplicationId, request: Request,
                             kind: NoticeKindId = Path(description="告知书类型：" + "，".join(
                                 f"{k} {v.title}" for k, v in APPLICATION_NOTICES.items())),
                             x_access_code: Optional[Text] = AccessCode,
                             format: Literal["pdf", "html"] = Query("pdf", description="pdf 或 html")):
    rt = _rt(request)
    app_id = await _own(rt, application_id, x_access_code)
    doc = await run_in_threadpool(request.app.state.notices.render, app_id, kind, format)
    media = "application/pdf" if format == "pdf" else "text/html; charset=utf-8"
    return Response(doc.data, media_type=media,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}"})
