"""`POST /v1/orgs/{org_id}/card`: the organisation pays by this card from now on (SPEC 12, R9)."""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from subchange.api.auth import ApiServices, Backend
from subchange.api.models import CardAnswer, CardBody
from subchange.api.problems import ProblemError, bad_field, problem_responses, unavailable
from subchange.domain.contracts import IDENTIFIER
from subchange.store.audit import add_audit_entry
from subchange.store.tables import Org

router = APIRouter(prefix="/v1", tags=["organisations"])
log = logging.getLogger("subchange.api")


@router.post("/orgs/{org_id}/card", operation_id="useCard", response_model=CardAnswer,
             summary="Pay by this card from now on",
             description="`payment_method` is a payment method your own card form created at "
                         "the gateway (Stripe.js / Elements): the service never sees a card "
                         "number. It is attached to the organisation's gateway customer and "
                         "made its default; every subscription of the organisation is charged "
                         "to it from now on, and an offline (bank transfer) payer becomes a "
                         "card payer (R9). Its changes waiting for payment (a declined card) "
                         "try their charge again at once (`retried_changes`).",
             responses=problem_responses(401, 403, 404, 422, 503))
async def use_card(org_id: str, body: CardBody, owner: Backend, api: ApiServices) -> CardAnswer:
    def attach() -> CardAnswer:
        import stripe  # the gateway's code is loaded by the first card, not at start

        from subchange.adapters.gateway import Gateway
        from subchange.store import subscriptions

        with api.sessions() as session:
            org = session.get(Org, org_id) if re.fullmatch(IDENTIFIER, org_id) else None
            if org is None:
                raise ProblemError(404, "not-found", f"no organisation {org_id!r}")
            gateway = Gateway(api.settings)
            try:
                customer = (subscriptions.customer_of(session=session, org_id=org_id)
                            or gateway.create_customer(email=org.billing_email, name=org.name,
                                                       org_id=org_id))
                last4 = gateway.use_card(customer_id=customer, method_id=body.payment_method)
            except stripe.CardError as error:
                raise bad_field("payment_method", f"the gateway declined the card: "
                                f"{error.user_message or error.code}") from None
            except stripe.InvalidRequestError as error:
                raise bad_field("payment_method", f"the gateway refused it: "
                                f"{error.user_message or 'no such payment method'}") from None
            except stripe.StripeError:
                raise unavailable("the payment gateway") from None
            products = subscriptions.use_card(session=session, org_id=org_id,
                                              customer_id=customer, method_id=body.payment_method,
                                              last4=last4)
            add_audit_entry(session=session, org_id=org_id, actor=owner.owner,
                            action="use_card", outcome="ok",
                            detail=f"card ending {last4 or '?'} for {', '.join(products) or '-'}")
            session.commit()
        return CardAnswer(org_id=org_id, payment_method=body.payment_method,
                          card_payers=products)

    answer = await run_in_threadpool(attach)
    return answer.model_copy(update={"retried_changes": await _wake(api, org_id)})


async def _wake(api: ApiServices, org_id: str) -> list[str]:
    """The card is the organisation's already: should Temporal not answer, its waiting changes
    try again at their next scheduled attempt (or support's retry), and the answer says none
    was retried now."""
    from temporalio.service import RPCError

    from subchange.app.payments import wake_changes_waiting_for_payment

    try:
        return await wake_changes_waiting_for_payment(await api.client(), api.sessions, org_id)
    except (ProblemError, RPCError, RuntimeError) as error:
        log.warning("the new card of %s is in place, but its changes waiting for payment "
                    "could not be told: %s", org_id, getattr(error, "detail", error))
        return []
