"""`GET /v1/invoices/{number}`: the invoice's PDF, as emailed."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from subchange.api.auth import ApiServices, Reader
from subchange.api.problems import ProblemError, problem_responses

router = APIRouter(prefix="/v1", tags=["invoices"])


@router.get("/invoices/{number}", operation_id="getInvoice", response_class=Response,
            summary="An invoice's PDF, as it was emailed",
            responses={200: {"description": "The PDF",
                             "content": {"application/pdf": {"schema": {
                                 "type": "string", "format": "binary"}}}},
                       **problem_responses(401, 403, 404, 503)})
async def get_invoice(number: str, _: Reader, api: ApiServices) -> Response:
    def render() -> bytes | None:
        # The PDF code is loaded by the first invoice asked for, not when the API starts.
        from subchange.documents.invoice_pdf import render_invoice_pdf
        from subchange.store import invoices

        with api.sessions() as session:
            found = invoices.issued(session=session, number=number)
        return None if found is None else render_invoice_pdf(*found)

    pdf = await run_in_threadpool(render) if len(number) <= 32 else None
    if pdf is None:
        raise ProblemError(404, "not-found", f"no invoice {number!r}")
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{number}.pdf"'})
