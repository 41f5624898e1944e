"""Staff endpoints (Bearer token). Each route: authenticate, parse, one store call in the
threadpool; long work is submitted as a background job (202 with the job's id)."""
from __future__ import annotations

import unicodedata
from typing import Literal, Optional
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.limits import JsonRoute
from api.schemas import (AccessCodeRequest, AmountsRequest, NewAccessCode, ApplicationCreate, Recorded, ApplicationId, FileName, JobId, WindowId, ApplicationState, ClosePreview, CloseOutcome, CloseRequest,
                         DecisionTable, ImpactRequest, Issued, JobRef, MaterialReview, NoticeRequest, Objection, ObjectionResolution,
                         Offset, ProactiveEntry, ReviewRequest, RowId, Status, Text, TokenCreate, WindowCreate,
                         error_responses, file_response)
from api.security import Staff, require_admin, require_staff
from notices.service import NoticeService
from store import applications, awards, cases, exports, jobs, tokens
from store import windows as W
from store.cases import ApplicationDetail
from store.intake import template_bytes
from store.jobs import JobView
from store.paths import draft_rules
from store.tasks import check_upload, stash_upload
from store.tokens import TokenView
from store.views import AwardList, ApplicationRow, Submitted, WindowView

router = APIRouter(route_class=JsonRoute, tags=["工作人员"])
AUTH = error_responses(401, 403)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ApplicationPage(BaseModel):
    total: int
    items: list[ApplicationRow]


class TokenCreated(BaseModel):
    token: TokenView
    value: str


def _db(request: Request):
    return request.app.state.runtime.db


async def _call(fn, *args, **kw):
    return await run_in_threadpool(lambda: fn(*args, **kw))


def _file(data: bytes, media_type: str, filename: str) -> Response:
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


async def _job(request: Request, kind: str, args: dict, who: Staff, lock: str | None) -> JSONResponse:
    job_id = await _call(jobs.submit, _db(request), kind, {**args, "actor": who.actor}, actor=who.actor,
                         lock_key=lock)
    return JSONResponse({"job_id": job_id}, status_code=202)


def _filename(upload: UploadFile, default: str) -> str:
    """The client's file name as it may be stored and shown: no control characters, bounded."""
    name = "".join(c for c in (upload.filename or "") if unicodedata.category(c)[0] != "C").strip()
    return name[-200:] or default


async def _upload(upload: UploadFile, default: str) -> tuple[str, str]:
    """(stashed path, file name) of an import file that passed the checks made before queueing."""
    name, data = _filename(upload, default), await upload.read()
    await _call(check_upload, data, name)
    return await _call(stash_upload, data, name), name


# --- windows -------------------------------------------------------------------------------------
@router.post("/v1/windows", status_code=201, summary="新建申报批次", response_model=WindowView,
             description="新建一个集中申报批次（每半年一次）。有默认日历的编号（如 2026-H1）可省略日期。编号重复返回 409。",
             responses={**AUTH, **error_responses(409, 422)})
async def create_window(body: WindowCreate, request: Request, who: Staff = Depends(require_staff)):
    data = body.model_dump(exclude_none=True)
    w = await _call(W.open_window, _db(request), data.pop("id"), actor=who.actor, **data)
    return await _call(W.get_window, _db(request), w.id)        # with the windows its coverage overlaps


@router.put("/v1/windows/{window_id}/amounts", summary="设定本批次金额（公示前）", tags=["管理员"],
            response_model=WindowView,
            description="按当期申报通知为批次设定金额等参数，替代规则中的参考金额（参考金额没有正式文件确认）。"
                        "只能在公示前设定；设定后须重新批量判定，才能公示和关闭。参数结构与规则中的相同，有误时一次列出全部"
                        "问题（422）；批次已公示或关闭返回 409。",
            responses={**AUTH, **error_responses(404, 409, 422)})
async def set_amounts(window_id: WindowId, body: AmountsRequest, request: Request, who: Staff = Depends(require_admin)):
    return await _call(W.set_amounts, _db(request), window_id, body.amounts, actor=who.actor)


@router.get("/v1/windows", summary="申报批次列表", response_model=list[WindowView], responses=AUTH,
            description="全部申报批次（新的在前），每个附各办理状态的申报数和资金支持判定计数。")
async def list_windows(request: Request, who: Staff = Depends(require_staff)):
    return await _call(W.list_windows, _db(request))


@router.get("/v1/windows/{window_id}", summary="申报批次详情", response_model=WindowView,
            description="批次信息与计数：各办理状态的申报数、资金支持判定结论（不含税收优惠）、已兑现金额。",
            responses={**AUTH, **error_responses(404)})
async def get_window(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    return await _call(W.get_window, _db(request), window_id)


@router.post("/v1/windows/{window_id}/applications", status_code=201, summary="受理一份申报",
             response_model=Submitted,
             description="受理期内受理一家企业的申报，返回申报编号和查询码（只返回这一次）。受理期外返回 409，"
                         "写明受理期。同一企业在受理期内、一次性告知前再次提交，会更新申报（已判定的回到待判定，"
                         "批次须重新批量判定后才能公示）并发放新的查询码，此前的查询码作废；超时后重试同样如此，"
                         "请保存最后一次返回的查询码。",
             responses={**AUTH, **error_responses(404, 409, 422)})
async def submit_application(window_id: WindowId, body: ApplicationCreate, request: Request,
                             who: Staff = Depends(require_staff)):
    return await _call(applications.submit_application, _db(request), window_id, body.profile, body.claims,
                       "api", actor=who.actor)


@router.post("/v1/windows/{window_id}/applications/import", status_code=202, summary="批量导入申报（后台任务）",
             response_model=JobRef,
             description="上传 .xlsx 或 .csv（模板见 /v1/import-template.xlsx）。无法读取的文件（类型不对、压缩包损坏或"
                         "过大、含 DTD、空文件或表头无法读取）立即返回 422；其余在后台导入，进度和逐行报告见任务。文件有错误时"
                         "不导入任何数据，除非 skip_invalid=true：任务照常结束（state 为 succeeded），其 result.committed "
                         "为 false，result.problems 列出每处问题（工作表、行、列）。新受理申报的查询码作为任务文件提供。",
             responses={**AUTH, **error_responses(404, 409, 413, 422)})
async def import_applications(window_id: WindowId, request: Request, file: UploadFile = File(...),
                              skip_invalid: bool = Form(False), who: Staff = Depends(require_staff)):
    await _call(W.require_startable, _db(request), "applications.import", window_id)
    path, name = await _upload(file, "upload.xlsx")
    return await _job(request, "applications.import", {"window_id": window_id, "path": path, "filename": name,
                                                       "skip_invalid": skip_invalid}, who, f"import:{window_id}")


@router.post("/v1/registry/import", status_code=202, summary="导入企业名录（免申即享，后台任务）", response_model=JobRef,
             description="导入园区已知企业（不产生申报），批量判定时一并判定，用于免申即享名单。文件要求与批量导入申报相同。",
             responses={**AUTH, **error_responses(409, 413, 422)})
async def import_registry(request: Request, file: UploadFile = File(...), skip_invalid: bool = Form(False),
                          who: Staff = Depends(require_staff)):
    path, name = await _upload(file, "registry.xlsx")
    return await _job(request, "applications.import", {"window_id": None, "path": path, "filename": name,
                                                       "skip_invalid": skip_invalid}, who, "import:registry")


@router.get("/v1/import-template.xlsx", summary="下载导入模板", response_class=Response,
            description="批量导入申报和企业名录所用的 Excel 模板：每个工作表的表头、填写示例和每列说明。",
            responses={**file_response(XLSX, description="导入模板"), **AUTH})
async def import_template(request: Request, who: Staff = Depends(require_staff)):
    ev = request.app.state.runtime.evaluator
    return _file(await _call(template_bytes, ev.registry), XLSX, "申报导入模板.xlsx")


@router.post("/v1/windows/{window_id}/evaluate", status_code=202, summary="批量判定（后台任务）",
             response_model=JobRef,
             description="判定批次的全部申报和已知企业（免申即享）。后台运行，可中断、可续跑；同一批次同时只运行一个"
                         "（已有任务时返回 409）；已关闭的批次返回 409。",
             responses={**AUTH, **error_responses(404, 409)})
async def evaluate(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    await _call(W.require_startable, _db(request), "window.evaluate", window_id)
    return await _job(request, "window.evaluate", {"window_id": window_id}, who, f"window:{window_id}")


@router.get("/v1/windows/{window_id}/applications", summary="申报列表", response_model=ApplicationPage,
            description="按企业名称、信用代码或申报编号搜索，按办理状态、判定结论、管理类别、待补正、是否已复核筛选。",
            responses={**AUTH, **error_responses(404, 422)})
async def list_applications(window_id: WindowId, request: Request,
                            q: Optional[Text] = Query(None, max_length=60, description="企业名称、信用代码或申报编号"),
                            state: Optional[ApplicationState] = Query(None, description="办理状态"),
                            status: Optional[Status] = Query(None, description="资金支持判定结论"),
                            device_class: Optional[Literal["I", "II", "III"]] = Query(None, description="管理类别：I、II、III"),
                            correction_pending: Optional[bool] = Query(None, description="只看待补正的"),
                            reviewed: Optional[bool] = Query(None, description="是否已复核"),
                            limit: int = Query(50, ge=1, le=500, description="每页条数"), offset: Offset = 0,
                            who: Staff = Depends(require_staff)):
    total, items = await _call(applications.list_applications, _db(request), window_id, q=q, state=state,
                               status=status, device_class=device_class, correction_pending=correction_pending,
                               reviewed=reviewed, limit=limit, offset=offset)
    return ApplicationPage(total=total, items=items)


@router.get("/v1/windows/{window_id}/decisions", summary="资金支持判定结论", response_model=DecisionTable,
            description="批次每项资金支持判定：规则引擎的结论和复核后的结论、金额（不含税收优惠）。",
            responses={**AUTH, **error_responses(404)})
async def decisions(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    title, rows, _totals = await _call(exports.decision_table, _db(request), window_id)
    return DecisionTable(title=title, headers=exports.DECISION_HEADERS, rows=rows)


@router.post("/v1/windows/{window_id}/one-time-notices", summary="发出一次性告知书", response_model=Issued,
             description="对已判定、资金支持事项未全部符合条件的申报发出一次性告知书（编号），并起算补正期限。"
                         "批次已公示或已关闭时返回 409。",
             responses={**AUTH, **error_responses(404, 409)})
async def one_time_notices(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    return Issued(issued=await _call(request.app.state.notices.issue_one_time_notices, _db(request), window_id,
                                     actor=who.actor))


@router.get("/v1/windows/{window_id}/proactive", summary="免申即享名单", response_model=list[ProactiveEntry],
            description="未申报但符合资金支持条件的已知企业（不含税收优惠）。批次尚未判定时返回 409。",
            responses={**AUTH, **error_responses(404, 409)})
async def proactive(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    return await _call(awards.proactive, _db(request), window_id)


@router.get("/v1/windows/{window_id}/awards", summary="拟支持名单 / 兑现名单", response_model=AwardList,
            description="关闭前为拟支持名单（按复核后的结论，同一注册证只支持一次），关闭后为写入兑现台账的兑现名单。"
                        "批次尚未判定时返回 409。",
            responses={**AUTH, **error_responses(404, 409)})
async def award_list(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    return await _call(awards.list_awards, _db(request), window_id)


@router.post("/v1/windows/{window_id}/publish", summary="公示拟支持名单", response_model=WindowView,
             description="受理期结束、全部申报已按现行规则判定后，公示拟支持名单（公示期为批次设定的工作日数）。"
                         "不满足时返回 409，写明当前状态。",
             responses={**AUTH, **error_responses(404, 409)})
async def publish(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    await _call(awards.publish, _db(request), window_id, actor=who.actor)
    return await _call(W.get_window, _db(request), window_id)      # with its counts, as GET answers


@router.get("/v1/windows/{window_id}/close", summary="关闭前确认", tags=["管理员"], response_model=ClosePreview,
            description="关闭将做什么：兑现项数与金额、不予支持告知书份数、是否需要提前关闭理由。",
            responses={**AUTH, **error_responses(404)})
async def close_preview(window_id: WindowId, request: Request, who: Staff = Depends(require_admin)):
    return await _call(awards.close_preview, _db(request), window_id)


@router.post("/v1/windows/{window_id}/close", summary="关闭批次并兑现", tags=["管理员"], response_model=CloseOutcome,
             description="公示期满后关闭：拟支持名单写入兑现台账（同一注册证只支持一次），对资金支持事项最终不符合"
                         "条件的申报发出不予支持告知书。公示期未满须写明提前关闭理由（否则 422）。已关闭、未判定或未按现行"
                         "规则判定时返回 409。不可撤销。",
             responses={**AUTH, **error_responses(404, 409, 422)})
async def close(window_id: WindowId, request: Request, body: CloseRequest | None = None,
                who: Staff = Depends(require_admin)):
    res = await _call(awards.close_window, _db(request), window_id, actor=who.actor,
                      reason=body.reason if body else None)
    request.app.state.runtime.invalidate_ledger()
    return CloseOutcome(window_id=res.window_id, awards=res.awards, already_awarded=res.already_awarded,
                        non_support_notices=res.non_support_notices, totals=res.totals)


@router.get("/v1/windows/{window_id}/awards.xlsx", summary="下载拟支持名单或兑现名单（Excel）", response_class=Response,
            description="拟支持名单或兑现名单的 Excel 文件，含合计和按管理类别、来源的小计。",
            responses={**file_response(XLSX, description="名单"), **AUTH, **error_responses(404, 409)})
async def awards_xlsx(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    return _file(await _call(exports.export_awards, _db(request), window_id, "xlsx"), XLSX,
                 await _call(exports.awards_filename, _db(request), window_id, "xlsx"))


@router.get("/v1/windows/{window_id}/awards.csv", summary="下载拟支持名单或兑现名单（CSV）", response_class=Response,
            description="与 Excel 文件相同的名单，UTF-8 编码的 CSV（每个字段加引号）。",
            responses={**file_response("text/csv", description="名单"), **AUTH, **error_responses(404, 409)})
async def awards_csv(window_id: WindowId, request: Request, who: Staff = Depends(require_staff)):
    return _file(await _call(exports.export_awards, _db(request), window_id, "csv"), "text/csv; charset=utf-8",
                 await _call(exports.awards_filename, _db(request), window_id, "csv"))


@router.post("/v1/windows/{window_id}/replay", status_code=202, summary="重放核验（后台任务）", tags=["管理员"],
             response_model=JobRef, description="按存档的规则版本和画像重新判定批次的全部判定，报告任何差异。",
             responses={**AUTH, **error_responses(404, 409)})
async def replay(window_id: WindowId, request: Request, who: Staff = Depends(require_admin)):
    await _call(W.get_window, _db(request), window_id)
    return await _job(request, "window.replay", {"window_id": window_id}, who, f"replay:{window_id}")


@router.post("/v1/windows/{window_id}/impact", status_code=202, summary="规则变化影响分析（后台任务）",
             response_model=JobRef,
             description="用另一套规则目录（或另一个判定日期）判定本批次的申报，列出每一项会改变的判定（结论、条件、金额差额），"
                         "结果可下载 Excel。", responses={**AUTH, **error_responses(404, 409, 422)})
async def impact(window_id: WindowId, body: ImpactRequest, request: Request, who: Staff = Depends(require_staff)):
    await _call(W.get_window, _db(request), window_id)
    rules_dir = await _call(draft_rules, body.rules_dir) if body.rules_dir else None
    return await _job(request, "window.impact", {"window_id": window_id, "rules_dir": rules_dir,
                                                 "as_of": body.as_of.isoformat() if body.as_of else None},
                      who, f"impact:{window_id}")


@router.post("/v1/windows/{window_id}/notices", status_code=202, summary="批量生成告知书（后台任务）",
             response_model=JobRef, description="生成批次全部告知书（PDF，按企业和文书命名；html=true 时每份另附 HTML），"
                                                "打包为 zip 供下载。", responses={**AUTH, **error_responses(404, 409)})
async def notice_bundle(window_id: WindowId, request: Request,
                        html: bool = Query(False, description="每份告知书另附 HTML（PDF 照常生成）"),
                        who: Staff = Depends(require_staff)):
    await _call(W.get_window, _db(request), window_id)
    return await _job(request, "notices.bundle", {"window_id": window_id, "html": html}, who, f"notices:{window_id}")


# --- one application ------------------------------------------------------------------------------
@router.get("/v1/applications/{application_id}/detail", summary="申报详情（工作人员）", response_model=ApplicationDetail,
            description="一份申报的全部：画像、每项资金支持判定及其条件、复核、材料、告知书、补正要求和办理记录。",
            responses={**AUTH, **error_responses(404)})
async def application_detail(application_id: ApplicationId, request: Request, who: Staff = Depends(require_staff)):
    return await _call(cases.detail, _db(request), application_id)


def _recorded(response: Response, got: tuple[int, bool]) -> Recorded:
    response.status_code = 201 if got[1] else 200
    return Recorded(id=got[0], created=got[1])


@router.post("/v1/applications/{application_id}/reviews", summary="复核一项判定", status_code=201,
             response_model=Recorded,
             description="维持规则引擎的判定，或写明理由改变它；两者都记录经办人和时间。返回复核记录的编号（201）；"
                         "不带 revision 的同一复核（同一经办人、同一结论和理由，其间没有其他复核）重复提交时不再登记，"
                         "返回原记录（200）。事项或注册证编号没有对应的判定时，与其他问题一并列出（422）；"
                         "版本已变（他人先操作）、申报尚未判定或已办结返回 409，写明当前状态。",
             responses={200: {"description": "同一复核此前已登记", "model": Recorded}, **AUTH, **error_responses(404, 409, 422)})
async def review(application_id: ApplicationId, body: ReviewRequest, request: Request, response: Response,
                 who: Staff = Depends(require_staff)):
    return _recorded(response, await _call(
        cases.review, _db(request), application_id, body.benefit_id, body.subject_id, body.action,
        body.status, body.reason, actor=who.actor, revision=body.revision, amount=body.amount_cny))


@router.post("/v1/applications/{application_id}/materials", status_code=201, summary="上传材料（工作人员）",
             response_model=Recorded,
             description="为申报添加一份材料文件（例如纸质材料的扫描件）：按文件内容判断类型（PDF、JPEG、PNG），"
                         "按 SHA-256 存储，待审核；返回材料编号（201）。同一文件重复提交（如超时后重试）而前一份尚待审核的，"
                         "不再登记，返回前一份的编号（200）。申报已办结时返回 409。",
             responses={200: {"description": "同一文件此前已登记", "model": Recorded},
                        **AUTH, **error_responses(404, 409, 413, 422)})
async def upload_material(application_id: ApplicationId, request: Request, response: Response,
                          file: UploadFile = File(...),
                          benefit_id: Text = Form(..., max_length=64), material_id: Text = Form(..., max_length=64),
                          subject_id: Optional[Text] = Form(None, max_length=100,
                                                           description="注册证编号（该材料为哪一张注册证提交）"),
                          who: Staff = Depends(require_staff)):
    name, data = _filename(file, "material"), await file.read()
    return _recorded(response, await _call(cases.upload_material, _db(request), application_id, benefit_id,
                                           material_id, name, data, actor=who.actor, subject_id=subject_id or None))


@router.post("/v1/applications/{application_id}/materials/{material_pk}/review", status_code=204,
             summary="审核上传的材料",
             description="通过或不通过一份材料（不通过须写理由；补正期限内重新开放补正）。已审核过的材料返回 409。",
             responses={**AUTH, **error_responses(404, 409, 422)})
async def review_material(application_id: ApplicationId, material_pk: RowId, body: MaterialReview, request: Request,
                          who: Staff = Depends(require_staff)):
    await _call(cases.review_material, _db(request), application_id, material_pk, body.accept, body.reason,
                actor=who.actor, revision=body.revision)
    return Response(status_code=204)


@router.get("/v1/applications/{application_id}/materials/{material_pk}", summary="下载上传的材料",
            response_class=Response, description="材料文件本身，以其按内容判断的类型返回（从不作为网页或脚本）。",
            responses={**file_response("application/pdf", "image/jpeg", "image/png", description="材料文件"),
                       **AUTH, **error_responses(404)})
async def material_file(application_id: ApplicationId, material_pk: RowId, request: Request,
                        who: Staff = Depends(require_staff)):
    m, data = await _call(cases.material_file, _db(request), application_id, material_pk)
    return _file(data, m.content_type, m.filename)


@router.post("/v1/applications/{application_id}/objections", status_code=201, summary="登记公示期异议",
             response_model=Recorded,
             description="公示期内登记对一份申报的异议，返回异议编号（201；处理意见按此编号记录）。同一异议重复提交"
                         "（如超时后重试）而尚未处理的，不再登记，返回原异议的编号（200）。不在公示期时返回 409，写明当前状态。",
             responses={200: {"description": "同一异议此前已登记", "model": Recorded}, **AUTH, **error_responses(404, 409, 422)})
async def objection(application_id: ApplicationId, body: Objection, request: Request, response: Response,
                    who: Staff = Depends(require_staff)):
    return _recorded(response, await _call(cases.raise_objection, _db(request), application_id, body.text,
                                           actor=who.actor))


@router.post("/v1/applications/{application_id}/objections/{objection_id}/resolution", status_code=204,
             summary="记录异议处理意见",
             description="写明对一项公示期异议的处理意见（异议编号见申报详情的 objections）。有未处理的异议时不能"
                         "关闭批次；需要改变结论的，先复核。已处理过的返回 409。",
             responses={**AUTH, **error_responses(404, 409, 422)})
async def objection_resolution(application_id: ApplicationId, objection_id: RowId, body: ObjectionResolution,
                               request: Request, who: Staff = Depends(require_staff)):
    await _call(cases.resolve_objection, _db(request), objection_id, body.resolution, actor=who.actor,
                application_id=application_id)
    return Response(status_code=204)


@router.post("/v1/applications/{application_id}/access-code", status_code=201, summary="重新生成查询码",
             response_model=NewAccessCode,
             description="企业遗失查询码时，工作人员核验来人身份后为其申报重新生成查询码。原查询码立即作废，用它登录的"
                         "企业页面随即退出；新查询码只在本次响应中返回（不保存明文）。每次调用都生成新的查询码，"
                         "重试会使上一次返回的查询码作废。原因记入办理记录和操作日志。",
             responses={**AUTH, **error_responses(404, 422)})
async def access_code(application_id: ApplicationId, body: AccessCodeRequest, request: Request,
                      who: Staff = Depends(require_staff)):
    code = await _call(cases.reissue_access_code, _db(request), application_id, body.reason, actor=who.actor)
    return NewAccessCode(application_id=application_id, access_code=code)


@router.post("/v1/notices", summary="生成告知书", response_class=Response,
             description="一份申报的一种告知书（HTML 或 PDF）。该申报还不能出具这种告知书时返回 409，写明原因。",
             responses={**file_response("text/html", "application/pdf", description="告知书"),
                        **AUTH, **error_responses(404, 409, 422)})
async def notice(body: NoticeRequest, request: Request, who: Staff = Depends(require_staff)):
    svc: NoticeService = request.app.state.notices
    doc = await _call(svc.render, body.application_id, body.kind, fmt=body.format)
    if body.format == "pdf":
        return _file(doc.data, "application/pdf", doc.filename)
    return Response(doc.data, media_type="text/html; charset=utf-8")


# --- jobs and tokens -----------------------------------------------------------------------------
@router.get("/v1/jobs/{job_id}", summary="后台任务进度", response_model=JobView,
            description="任务的状态（排队中、进行中、已完成、失败、已取消）、进度（done/total）、结果或失败原因，"
                        "以及可下载的文件。", responses={**AUTH, **error_responses(404)})
async def job(job_id: JobId, request: Request, who: Staff = Depends(require_staff)):
    return await _call(jobs.get, _db(request), job_id)


@router.post("/v1/jobs/{job_id}/cancel", status_code=204, summary="取消后台任务",
             description="取消排队中或进行中的任务（进行中的在下一批次提交前停止）；已结束的任务返回 409。",
             responses={**AUTH, **error_responses(404, 409)})
async def cancel_job(job_id: JobId, request: Request, who: Staff = Depends(require_staff)):
    await _call(jobs.cancel, _db(request), job_id)
    return Response(status_code=204)


@router.get("/v1/jobs/{job_id}/files/{name}", summary="下载任务产生的文件", response_class=Response,
            description="任务产生的文件，例如导入后新受理申报的查询码、告知书压缩包、影响分析表。查询码文件的每次下载"
                        "都记录经办人和时间（见任务的 downloads）。",
            responses={**file_response("application/octet-stream", description="任务文件"),
                       **AUTH, **error_responses(404)})
async def job_file(job_id: JobId, name: FileName, request: Request, who: Staff = Depends(require_staff)):
    media, data = await _call(jobs.file, _db(request), job_id, name, actor=who.actor)
    return _file(data, media, name)


@router.get("/v1/tokens", summary="令牌列表", tags=["管理员"], response_model=list[TokenView], responses=AUTH,
            description="全部令牌（编号、角色、用途、建立和吊销时间），不含令牌本身。")
async def list_tokens(request: Request, who: Staff = Depends(require_admin)):
    return await _call(tokens.list_tokens, _db(request))


@router.post("/v1/tokens", status_code=201, summary="新建令牌", tags=["管理员"], response_model=TokenCreated,
             description="返回令牌的编号（用于吊销）、到期时间和令牌明文；明文只返回这一次，数据库只存其哈希。"
                         "令牌在有效期（days，默认 365 天）满后不能再使用，它登录的控制台会话同时结束。",
             responses={**AUTH, **error_responses(422)})
async def create_token(body: TokenCreate, request: Request, who: Staff = Depends(require_admin)):
    view, value = await _call(tokens.create_token, _db(request), body.role, body.label, days=body.days,
                              actor=who.actor)
    return TokenCreated(token=view, value=value)


@router.delete("/v1/tokens/{token_id}", status_code=204, summary="吊销令牌", tags=["管理员"],
               description="吊销后该令牌及其登录的控制台会话立即失效。不存在或已吊销返回 404；不能吊销正在使用的令牌（409）。",
               responses={**AUTH, **error_responses(404, 409)})
async def revoke_token(token_id: RowId, request: Request, who: Staff = Depends(require_admin)):
    if token_id == who.token_id:
        raise ApiError(409, "不能吊销正在使用的令牌：请用另一个管理员令牌吊销它")
    await _call(tokens.revoke_token, _db(request), token_id, actor=who.actor)
    return Response(status_code=204)
