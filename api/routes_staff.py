"""Staff endpoints (Bearer token). Each route: auth, parse, one store call in the threadpool."""
from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api import domain
from api.auth import require_admin, require_staff
from api.errors import ApiError
from api.limits import JsonRoute
from api.schemas import (ApplicationCreate, NoticeRequest, TokenCreate, WindowCreate,
                         error_responses)
from api.services import check_profile_limits

router = APIRouter(route_class=JsonRoute)

AUTH_ERRORS = error_responses(401, 403)
WINDOW_EXAMPLE = {"id": "2026-H1", "label": "2026年上半年集中申报", "opens_on": "2026-03-01",
                  "closes_on": "2026-03-31", "as_of": "2026-03-31", "coverage_from": "2025-07-01",
                  "coverage_to": "2025-12-31", "amounts": {}, "state": "open"}
COUNTS_EXAMPLE = {"window_id": "2026-H1", "counts": {"eligible": 12, "ineligible": 5,
                                                     "needs_info": 3, "not_in_force": 0}}


def _rt(request: Request):
    return request.app.state.runtime


async def _call(request: Request, name: str, *args) -> Any:
    fn = getattr(domain, name)
    return domain.plain(await run_in_threadpool(fn, _rt(request), *args))


def _example(ex) -> dict:
    return {200: {"content": {"application/json": {"example": ex}}}}


@router.post("/v1/windows", status_code=201, summary="新建申报批次", tags=["工作人员"],
             description="新建一个集中申报批次（每半年一次）。编号重复返回 409。",
             responses={201: {"content": {"application/json": {"example": WINDOW_EXAMPLE}}},
                        **AUTH_ERRORS, **error_responses(409, 422)})
async def create_window(body: WindowCreate, request: Request, role: str = Depends(require_staff)):
    data = body.model_dump(exclude_none=True)
    result = await _call(request, "open_window", data, f"token:{role}")
    return JSONResponse(result, status_code=201)


@router.get("/v1/windows", summary="申报批次列表", tags=["工作人员"],
            responses={**_example([WINDOW_EXAMPLE]), **AUTH_ERRORS})
async def list_windows(request: Request, role: str = Depends(require_staff)):
    return await _call(request, "list_windows")


@router.get("/v1/windows/{window_id}", summary="申报批次详情", tags=["工作人员"],
            description="批次信息、各状态的判定数量、按类别的拟支持金额合计。",
            responses={**_example(WINDOW_EXAMPLE), **AUTH_ERRORS, **error_responses(404)})
async def get_window(window_id: str, request: Request, role: str = Depends(require_staff)):
    return await _call(request, "get_window", window_id)


@router.post("/v1/windows/{window_id}/applications", status_code=201, summary="受理一份申报",
             tags=["工作人员"],
             description="受理企业申报（画像 + 申报的注册证编号），返回申报编号和一次性查询码"
                         "（只显示这一次）。批次不在受理期返回 409。",
             responses={201: {"content": {"application/json": {"example": {
                 "application_id": "A-2026-H1-000001", "access_code": "7KQ2-9XMD-4PLA"}}}},
                 **AUTH_ERRORS, **error_responses(404, 409, 422)})
async def submit_application(window_id: str, body: ApplicationCreate, request: Request,
                             role: str = Depends(require_staff)):
    check_profile_limits(body.profile, _rt(request))
    result = await _call(request, "submit_application", window_id, body.profile, body.claims,
                         f"token:{role}")
    return JSONResponse(result, status_code=201)


@router.post("/v1/windows/{window_id}/applications/import", summary="批量导入申报",
             tags=["工作人员"],
             description="上传 `.xlsx` 或 `.csv`（上限 20 MB），返回逐行报告。有无效行时整份文件不导入，"
                         "除非 `skip_invalid=true`（只导入有效行）。",
             responses={**_example({"imported": 2, "skipped": 1, "rows": [
                 {"row": 2, "status": "imported", "application_id": "A-2026-H1-000002",
                  "access_code": "…"},
                 {"row": 4, "status": "invalid", "problems": [
                     {"column": "统一社会信用代码", "message": "校验位不正确"}]}]}),
                 **AUTH_ERRORS, **error_responses(404, 409, 413, 422)})
async def import_applications(window_id: str, request: Request,
                              file: UploadFile = File(..., description=".xlsx 或 .csv 文件"),
                              skip_invalid: bool = Form(False, description="跳过无效行，只导入有效行"),
                              role: str = Depends(require_staff)):
    name = (file.filename or "").lower()
    if not (name.endswith(".xlsx") or name.endswith(".csv")):
        raise ApiError(422, "只接受 .xlsx 或 .csv 文件", [("file", "文件类型必须是 .xlsx 或 .csv")])
    data = await file.read()
    q = request.query_params.get("skip_invalid", "").lower() in ("1", "true", "yes")
    return await _call(request, "import_applications", window_id, data, file.filename,
                       skip_invalid or q, f"token:{role}")


@router.post("/v1/windows/{window_id}/evaluate", summary="批量判定", tags=["工作人员"],
             description="对批次内全部申报（及已知企业）逐项判定，返回各状态数量。可重复调用，结果不变。",
             responses={**_example(COUNTS_EXAMPLE), **AUTH_ERRORS, **error_responses(404, 409)})
async def evaluate_window(window_id: str, request: Request, role: str = Depends(require_staff)):
    return await _call(request, "evaluate_window", window_id, f"token:{role}")


@router.get("/v1/windows/{window_id}/decisions", summary="判定结果", tags=["工作人员"],
            responses={**_example([{"application_id": "A-2026-H1-000001",
                                    "uscc": "91512000MA62XY001U", "benefit_id": "device-registration-grant",
                                    "subject": {"type": "certificate", "id": "川械注准20252170031"},
                                    "status": "eligible", "amount_cny": 300000}]),
                       **AUTH_ERRORS, **error_responses(404)})
async def list_decisions(window_id: str, request: Request, role: str = Depends(require_staff),
                         status: Optional[str] = Query(None, description="只看此状态")):
    return await _call(request, "list_decisions", window_id, status)


@router.get("/v1/windows/{window_id}/proactive", summary="免申即享名单", tags=["工作人员"],
            description="系统已知、未申报但符合条件的企业（政策找企业）。",
            responses={**_example([{"uscc": "91512000MA62XY001U", "name": "资阳示例口腔医疗器械有限公司",
                                    "benefit_id": "device-registration-grant",
                                    "subject_id": "川械注准20252170031", "amount_cny": 300000}]),
                       **AUTH_ERRORS, **error_responses(404)})
async def proactive(window_id: str, request: Request, role: str = Depends(require_staff)):
    return await _call(request, "proactive", window_id)


@router.post("/v1/windows/{window_id}/close", summary="关闭批次并生成拟支持名单", tags=["管理员"],
             description="关闭批次，按台账生成拟支持名单和合计；已在任何批次获支持的对象不再重复支持。需 admin。",
             responses={**_example({"window_id": "2026-H1", "awards": [
                 {"benefit_id": "device-registration-grant", "subject_id": "川械注准20252170031",
                  "uscc": "91512000MA62XY001U", "amount_cny": 300000}],
                 "totals": {"count": 1, "amount_cny": 300000}}),
                 **AUTH_ERRORS, **error_responses(404, 409)})
async def close_window(window_id: str, request: Request, role: str = Depends(require_admin)):
    return await _call(request, "close_window", window_id, f"token:{role}")


def _file(data: bytes, media_type: str, filename: str) -> Response:
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\""})


@router.get("/v1/windows/{window_id}/awards.xlsx", summary="下载拟支持名单（Excel）", tags=["工作人员"],
            response_class=Response,
            responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
                       **AUTH_ERRORS, **error_responses(404, 409)})
async def awards_xlsx(window_id: str, request: Request, role: str = Depends(require_staff)):
    data = await run_in_threadpool(domain.export_awards, _rt(request), window_id, "xlsx")
    return _file(data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 f"awards-{window_id}.xlsx")


@router.get("/v1/windows/{window_id}/awards.csv", summary="下载拟支持名单（CSV）", tags=["工作人员"],
            response_class=Response,
            responses={200: {"content": {"text/csv": {}}}, **AUTH_ERRORS, **error_responses(404, 409)})
async def awards_csv(window_id: str, request: Request, role: str = Depends(require_staff)):
    data = await run_in_threadpool(domain.export_awards, _rt(request), window_id, "csv")
    if isinstance(data, str):
        data = data.encode("utf-8-sig")
    return _file(data, "text/csv; charset=utf-8", f"awards-{window_id}.csv")


@router.post("/v1/notices", summary="生成告知书", tags=["工作人员"],
             description="为一份申报生成告知书：one_time 一次性告知书、award 拟支持通知、"
                         "non_support 不予支持告知书、tax_self_assessment 税收优惠自评表；HTML 或 PDF。",
             response_class=Response,
             responses={200: {"content": {"text/html": {}, "application/pdf": {}}},
                        **AUTH_ERRORS, **error_responses(404, 409, 422)})
async def create_notice(body: NoticeRequest, request: Request, role: str = Depends(require_staff)):
    data = await run_in_threadpool(domain.render_notice, _rt(request), body.application_id,
                                   body.kind, body.format)
    if body.format == "pdf":
        return Response(data, media_type="application/pdf")
    return Response(data, media_type="text/html; charset=utf-8")


@router.get("/v1/windows/{window_id}/notices.zip", summary="下载批次全部告知书（zip）", tags=["工作人员"],
            response_class=Response,
            responses={200: {"content": {"application/zip": {}}}, **AUTH_ERRORS, **error_responses(404, 409)})
async def notices_zip(window_id: str, request: Request, role: str = Depends(require_staff)):
    data = await run_in_threadpool(domain.notices_zip, _rt(request), window_id)
    return _file(data, "application/zip", f"notices-{window_id}.zip")


@router.post("/v1/tokens", status_code=201, summary="新建令牌", tags=["管理员"],
             description="生成工作人员令牌（只显示这一次，数据库只存其哈希）。需 admin。",
             responses={201: {"content": {"application/json": {"example": {
                 "role": "staff", "label": "受理窗口", "token": "yagu_…"}}}},
                 **AUTH_ERRORS, **error_responses(422)})
async def create_token(body: TokenCreate, request: Request, role: str = Depends(require_admin)):
    from store.tokens import create_token as _create
    token = await run_in_threadpool(_create, body.role, body.label or "", db=_rt(request).store,
                                    actor=f"token:{role}")
    return JSONResponse({"role": body.role, "label": body.label, "token": token}, status_code=201)


@router.delete("/v1/tokens/{token_id}", status_code=204, summary="吊销令牌", tags=["管理员"],
               responses={**AUTH_ERRORS, **error_responses(404)})
async def revoke_token(request: Request, token_id: int = Path(ge=1, le=2**62, description="令牌编号"),
                       role: str = Depends(require_admin)):
    from store.tokens import revoke_token as _revoke
    await run_in_threadpool(_revoke, token_id, db=_rt(request).store, actor=f"token:{role}")
    return Response(status_code=204)
