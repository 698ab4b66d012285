"""The broadcast log (nhật ký phát) and the daily report, as JSON or CSV."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from controller.api.deps import Day, Instant, SessionDep, Staff
from controller.api.errors import ErrorCode, api_error
from controller.schemas import LogEntryOut
from controller.services import playback, reports

router = APIRouter(tags=["broadcast log"])


@router.get("/api/log", response_model=list[LogEntryOut])
def broadcast_log(user: Staff, session: SessionDep, since: Instant | None = None,
                  until: Instant | None = None, node: str | None = None,
                  item: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[LogEntryOut]:
    """Every playback report: planned and actual start, duration, outcome."""
    return [LogEntryOut.model_validate(r) for r in
            playback.log_entries(session, since=since, until=until, node=node, item=item,
                                 limit=limit)]


@router.get("/api/reports/daily", response_model=None, responses={200: {"content": {
    "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}},
    "description": "the report (``format=json``) or its CSV (``format=csv``)"}})
def daily_report(user: Staff, session: SessionDep, day: Day,
                 format: Literal["json", "csv"] = "json",
                 timezone: str | None = None) -> dict | PlainTextResponse:
    """Play count and total duration per item, per node and per zone for one local day
    (in ``timezone``, default the commune's, ``LOAXA_TIMEZONE``)."""
    try:
        report = reports.daily_report(session, day, timezone)
    except (KeyError, ValueError):
        raise api_error(422, ErrorCode.invalid_request,
                        "Múi giờ không hợp lệ: dùng tên IANA, ví dụ Asia/Ho_Chi_Minh.") from None
    if format == "csv":
        return PlainTextResponse(reports.report_csv(report), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="loaxa-report-{day}.csv"'})
    return report
