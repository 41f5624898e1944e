"""Public endpoints: health, rules, eligibility, tax self-assessment, application look-up."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import services
from api.limits import JsonRoute
from api.runtime import rule_full, rule_summaries
from api.schemas import EXAMPLE_PROFILE, EligibilityRequest, TaxSelfAssessmentRequest, error_responses

router = APIRouter(route_class=JsonRoute)

_CRITERION_EXAMPLE = {
    "id": "in_park", "text": "注册地在资阳高新区（中国牙谷）", "outcome": "pass",
    "observed": {"in_park": True}, "threshold": None,
    "legal_basis": ["资阳高新区推进中国牙谷高质量发展工作方案 重点任务7"], "materials": ["business_license"]}

ELIGIBILITY_EXAMPLE = {
    "as_of": "2026-03-31",
    "ruleset_version": "3f2a9c…",
    "results": [{
        "benefit_id": "device-registration-grant", "title": "医疗器械产品注册证资金支持",
        "kind": "grant", "subject": {"type": "certificate", "id": "川械注准20252170031"},
        "status": "eligible", "amount_cny": 300000, "amount_provisional": True,
        "amount_note": "金额为参考值，以当期申报通知为准",
        "criteria": [_CRITERION_EXAMPLE], "missing_facts": [],
        "required_materials": [{"id": "business_license", "name": "营业执照复印件", "proves": ["in_park"]}],
        "window": None}],
}

TAX_EXAMPLE = {
    "tax_year": 2025, "ruleset_version": "3f2a9c…",
    "items": [{**ELIGIBILITY_EXAMPLE["results"][0], "benefit_id": "small-low-profit-cit",
               "title": "小型微利企业所得税优惠", "kind": "tax", "subject": None,
               "amount_cny": None, "amount_provisional": False,
               "records_to_keep": ["年度企业所得税纳税申报表"], "keep_until": "2036-05-31"}],
    "conflicts": [],
}


def _rt(request: Request):
    return request.app.state.runtime


def _json(model) -> Response:
    # pydantic-core serialises straight to bytes: the contract response, no second validation.
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/healthz", summary="健康检查", tags=["公共"],
            description="服务存活检查，返回 `{\"status\": \"ok\"}`。",
            responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}})
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/v1/rules", summary="政策列表", tags=["公共"],
            description="列出全部政策：编号、名称、类型（grant 资金支持 / tax 税收优惠）、"
                        "判定单位（enterprise 企业 / certificate 注册证）、有效期和政策依据。",
            responses={200: {"content": {"application/json": {"example": [{
                "id": "small-low-profit-cit", "title": "小型微利企业所得税优惠", "kind": "tax",
                "unit": "enterprise", "in_force": {"from": "2023-01-01", "to": "2027-12-31"},
                "legal_basis": [{"id": "caishui-2023-12", "title": "关于进一步支持小微企业和个体工商户发展有关税费政策的公告",
                                 "doc_no": "财政部 税务总局公告2023年第12号"}]}]}}}})
async def list_rules(request: Request) -> list[dict[str, Any]]:
    return rule_summaries(_rt(request).evaluator)


@router.get("/v1/rules/{rule_id}", summary="政策详情", tags=["公共"],
            description="一项政策的完整规则：各项条件（编号、文字、政策依据）、所需材料、"
                        "带生效日期和出处的参数。未知编号返回 404。",
            responses={200: {"content": {"application/json": {"example": {
                "id": "small-low-profit-cit", "title": "小型微利企业所得税优惠",
                "criteria": [{"id": "taxable_income", "text": "年度应纳税所得额不超过300万元",
                              "basis": [{"ref": "caishui-2023-12", "article": "第五条"}]}],
                "materials": [{"id": "annual_return", "name": "年度企业所得税纳税申报表"}],
                "parameters": {"income_cap": {"unit": "元", "values": [
                    {"from": "2023-01-01", "value": 3000000,
                     "reference": {"basis": "caishui-2023-12", "article": "第五条"}}]}}}}}},
                       **error_responses(404)})
async def get_rule(rule_id: str, request: Request) -> dict[str, Any]:
    return rule_full(_rt(request).evaluator, rule_id)


@router.post("/v1/eligibility", summary="惠企政策资格自测", tags=["公共"],
             description="提交企业画像，逐项判定每项政策的每一条件（符合 ✓ / 不符合 ✗ / 待补充 ?），"
                         "给出状态（eligible 符合、ineligible 不符合、needs_info 需补充信息、"
                         "not_in_force 不在有效期）、参考金额、缺失信息和所需材料。"
                         "画像有误时返回 422，一次列出全部问题。",
             responses={200: {"content": {"application/json": {"example": ELIGIBILITY_EXAMPLE}}},
                        **error_responses(400, 413, 415, 422)})
async def eligibility(body: EligibilityRequest, request: Request):
    resp = await services.eligibility(_rt(request), body.profile, body.as_of, body.benefits)
    return _json(resp)


@router.post("/v1/tax/self-assessment", summary="税收优惠自行判别", tags=["公共"],
             description="按纳税年度判别各项税收优惠（享受方式：自行判别、申报享受、相关资料留存备查），"
                         "列出留存备查资料及保存期限，并指出不能同时享受的优惠。",
             responses={200: {"content": {"application/json": {"example": TAX_EXAMPLE}}},
                        **error_responses(400, 413, 415, 422)})
async def tax_self_assessment(body: TaxSelfAssessmentRequest, request: Request):
    resp = await services.tax_self_assessment(_rt(request), body.profile, body.tax_year)
    return _json(resp)


@router.get("/v1/applications/{application_id}", summary="凭查询码查看申报", tags=["企业"],
            description="企业凭申报编号和查询码查看本企业的申报：判定结果（每项条件、缺失信息、所需材料、金额）"
                        "和告知书。查询码错误与编号不存在的回答完全相同（404）。",
            responses={200: {"content": {"application/json": {"example": {
                "application_id": "A-2026-H1-000001", "window_id": "2026-H1",
                "enterprise": {"uscc": EXAMPLE_PROFILE["uscc"], "name": EXAMPLE_PROFILE["name"]},
                "decisions": ELIGIBILITY_EXAMPLE["results"],
                "notices": [{"kind": "one_time", "number": "资高新惠〔2026〕1号"}]}}}},
                **error_responses(404, 422)})
async def get_application(application_id: str, request: Request,
                          access_code: str = Query(..., min_length=1, max_length=200,
                                                   description="受理时发放的查询码")):
    from api import domain
    return await run_in_threadpool(domain.application_for_enterprise,
                                   _rt(request), application_id, access_code)
