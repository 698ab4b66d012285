"""The broadcast log (nhật ký phát) and the report, as JSON, CSV or an Excel workbook."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

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


ReportFormat = Literal["json", "csv", "xlsx"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {
    "application/json": {"schema": {"type": "object"}},
    "text/csv": {"schema": {"type": "string"}},
    XLSX: {"schema": {"type": "string", "format": "binary"}}},
    "description": "the report (``format=json``), its CSV or its Excel workbook"}}
BAD_TIMEZONE = "Múi giờ không hợp lệ: dùng tên IANA, ví dụ Asia/Ho_Chi_Minh."


@router.get("/api/reports/daily", response_model=None, responses=REPORT_RESPONSES)
def daily_report(user: Staff, session: SessionDep, day: Day, format: ReportFormat = "json",
                 timezone: str | None = None) -> dict | Response:
    """Plays and minutes per announcement, node and village for one local day (in
    ``timezone``, default the commune's, ``LOAXA_TIMEZONE``): JSON, CSV (Vietnamese
    headers, UTF-8 with a BOM for Excel) or an Excel workbook."""
    try:
        report = reports.daily_report(session, day, timezone)
    except (KeyError, ValueError):
        raise api_error(422, ErrorCode.invalid_request, BAD_TIMEZONE) from None
    return report_response(report, format, f"bao-cao-phat-{day}")


@router.get("/api/reports/monthly", response_model=None, responses=REPORT_RESPONSES)
def monthly_report(user: Staff, session: SessionDep,
                   month: Annotated[str, Query(pattern=r"^(19|2\d)\d\d-(0[1-9]|1[0-2])$")],
                   format: ReportFormat = "json", timezone: str | None = None
                   ) -> dict | Response:
    """The same totals for a whole month (``month``: ``2026-12``)."""
    year, number = (int(x) for x in month.split("-"))
    try:
        report = reports.monthly_report(session, year, number, timezone)
    except (KeyError, ValueError):
        raise api_error(422, ErrorCode.invalid_request, BAD_TIMEZONE) from None
    return report_response(report, format, f"bao-cao-phat-{month}")


def report_response(report: dict, format: str, name: str) -> dict | Response:
    if format == "csv":
        return Response(reports.report_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if format == "xlsx":
        return Response(reports.report_xlsx(report), media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    return report
