"""`POST /v1/quotes`: what a change would cost today, or which rule refuses it; changes nothing."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from subchange.api.auth import ApiServices, Reader
from subchange.api.models import QuoteAnswer
from subchange.api.problems import problem_responses
from subchange.app.quotes import preview
from subchange.domain.catalog import default_catalog
from subchange.domain.contracts import ChangeInput, Rejection

router = APIRouter(prefix="/v1", tags=["quotes"])


@router.post("/quotes", operation_id="quoteChange", response_model=QuoteAnswer,
             summary="Preview a change's quote; changes nothing",
             description="The section 7 input without a request id. Answers the quote the "
                         "change would get today, or the rule that refuses it (`rejection`, "
                         "with the reason code the change would end with).",
             responses=problem_responses(401, 403, 422, 503))
async def quote_change(body: ChangeInput, _: Reader, api: ApiServices) -> QuoteAnswer:
    def answer() -> QuoteAnswer:
        with api.sessions() as session:
            found = preview(session=session, catalog=default_catalog(), change=body)
        if isinstance(found, Rejection):
            return QuoteAnswer(quote=None, rejection=found)
        return QuoteAnswer(quote=found, rejection=None)

    return await run_in_threadpool(answer)
