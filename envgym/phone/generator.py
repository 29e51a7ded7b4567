"""Procedural phone scenarios: ``generate_scenario(seed, difficulty)``.

Every generated scenario is a valid :class:`~envgym.phone.models.PhoneScenario` that passes
:func:`~envgym.phone.models.check_references` and that a perfect caller can solve: one service
(the *task*) sets every goal record, its eligibility rule passes for the user's true facts, its
fee is within ``goal.max_fees``, its department is reachable from a listed number, and
``constraints.max_turns`` leaves at least twice the turns a perfect caller needs.

The company comes from a seeded domain (internet provider, bank, airline, utility, insurer,
phone carrier, gym) with its own departments, tasks, distractor services and facts. The
``difficulty`` dial (0..4) turns every knob up together:

========================  ======  ======  ========  ========  ==========
knob                      0       1       2         3         4
========================  ======  ======  ========  ========  ==========
IVR depth                 none    1       2         2-3       3
verification items        1       1-2     2         2-3       3-4
facts only the user knows 0       0-1     1         1-2       2-3
eligibility rule          no      no      50%       yes       yes
transfer to the task      no      no      40%       40%       30%
call another number       no      no      no        30%       50%
fee within max_fees       no      no      50%       60%       60%
pricier look-alike        no      no      no        with fee  with fee
offer to decline          no      no      no        40%       60%
trap service (if any)     no      no      50%       70%       yes
distractor departments    0       1       1-2       2-3       3-4
distractor services       1       1-2     2-3       3-4       4-5
distractor numbers        0       0-1     1         1-2       2-3
hold (max steps)          0       <=2     <=3       <=5       <=7
call budget               3       3       3         2-3       1-2
calls per number          3       3       3         2         1-2
========================  ======  ======  ========  ========  ==========

A half level, ``difficulty=0.5`` (:data:`HALF_LEVELS`), sits between 0 and 1: level 0's knobs
behind a one-option IVR menu, with a hold of up to 2 steps (the ladder is :data:`LEVELS`).

Otherwise the listed number reaches the task's department itself (through the IVR, if any).
"Transfer" means it reaches general customer service, which transfers to the task's department
(a second hold). "Call another number" means every department has ``transfers: false``: the
first rep names an unlisted number that reaches the task's department, so two calls are needed
(the call budget is 2 at difficulty 4, 2-3 at difficulty 3). A trap service looks like the
task but breaks the goal; an offer (a retention deal or an upsell) ends the request without
the task's effects if accepted.
"""

from __future__ import annotations

import dataclasses
import operator
import random
from dataclasses import dataclass

from envgym.phone.models import (
    Company,
    Constraints,
    Department,
    Eligibility,
    Fact,
    Goal,
    IvrNode,
    Offer,
    PhoneNumber,
    PhoneScenario,
    Phrasing,
    Policies,
    Realtime,
    Route,
    Service,
    User,
)

MAX_DIFFICULTY = 4
"""Highest supported difficulty; difficulties run from 0 to this inclusive."""


# --------------------------------------------------------------------------------------------
# Domain data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dept:
    """A department template: id, spoken label and the IVR phrase that leads to it."""

    id: str
    label: str
    menu: str


@dataclass(frozen=True)
class _Rule:
    """An eligibility rule; the user's true value is drawn from ``allowed``."""

    fact: str
    label: str
    allowed: tuple[str, ...]
    refusal: str


@dataclass(frozen=True)
class _Trap:
    """A tempting service that breaks the goal (``effects`` may name the task's field)."""

    id: str
    label: str
    effects: tuple[tuple[str, str], ...]
    initials: tuple[tuple[str, str], ...]
    hint: str


@dataclass(frozen=True)
class _OfferSpec:
    """An offer to decline; ``field`` None means it sets the task's own field."""

    text: str
    field: str | None
    value: str
    initial: str = "none"


@dataclass(frozen=True)
class _Task:
    """The service the user needs, with its goal record and IVR path (coarse to specific)."""

    id: str
    title: str
    label: str
    dept: str
    field: str
    initial: str
    target: str
    request: str
    menu: tuple[str, str, str]
    done: str
    trap: _Trap | None = None
    offer: _OfferSpec | None = None
    rule: _Rule | None = None


@dataclass(frozen=True)
class _Extra:
    """A distractor service with its own record field."""

    id: str
    label: str
    dept: str
    field: str
    initial: str
    value: str
    fee: int = 0


@dataclass(frozen=True)
class _Domain:
    """One kind of company."""

    kind: str
    suffixes: tuple[str, ...]
    general: _Dept
    depts: tuple[_Dept, ...]
    id_fact: tuple[str, str, str]
    tasks: tuple[_Task, ...]
    extras: tuple[_Extra, ...]
    rules: tuple[_Rule, ...]
    upsells: tuple[_OfferSpec, ...]


def _extras(table: str) -> tuple[_Extra, ...]:
    """Parse distractor services, one per line: ``id | label | dept | field | from | to [| fee]``.

    ``field`` ``=`` means the record field is named like the service.
    """
    rows = []
    for line in table.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        sid, label, dept, field, initial, value = cells[:6]
        fee = int(cells[6]) if len(cells) > 6 else 0
        rows.append(_Extra(sid, label, dept, sid if field == "=" else field, initial, value, fee))
    return tuple(rows)


_ROLE_RULES = (
    _Rule(
        "account_role",
        "role on the account",
        ("account_holder",),
        "I'm sorry, only the primary account holder can make that change.",
    ),
    _Rule(
        "account_role",
        "role on the account",
        ("account_holder", "authorized_user"),
        "I'm sorry, I can only do that for the account holder or an authorized user.",
    ),
)

_GENERAL = _Dept("customer_service", "customer service", "for all other questions")

_DOMAINS: tuple[_Domain, ...] = (
    _Domain(
        kind="isp",
        suffixes=("Internet", "Broadband", "Fiber", "Cable & Internet"),
        general=_GENERAL,
        depts=(
            _Dept("billing", "billing", "for billing, payments or discounts"),
            _Dept("tech_support", "technical support", "for technical support or outages"),
            _Dept("sales", "sales", "to upgrade your plan or add a service"),
            _Dept("retention", "customer loyalty", "to cancel your service"),
            _Dept("installations", "installations", "to schedule or change an installation"),
        ),
        id_fact=("account_number", "account number", "d10"),
        tasks=(
            _Task(
                id="service_member_discount",
                title="get the service-member discount on the internet bill",
                label="the discount for veterans and first responders",
                dept="billing",
                field="discount",
                initial="none",
                target="service_member_20",
                request="My {company} bill is too high. They have a discount for veterans and "
                "first responders - please call them and get it applied to my account.",
                menu=(
                    "for billing and account questions",
                    "for discounts and promotions",
                    "to ask about discounts for service members and first responders",
                ),
                done="Done - the 20 percent discount starts with your next bill.",
                trap=_Trap(
                    "autopay_discount",
                    "the autopay discount",
                    (("discount", "autopay_5"), ("autopay", "on")),
                    (("autopay", "off"),),
                    "I don't want autopay; I pay my bills myself.",
                ),
                rule=_Rule(
                    "occupation",
                    "occupation",
                    ("veteran", "active_military", "firefighter", "police_officer"),
                    "I'm sorry, that discount is only for military members and first responders.",
                ),
            ),
            _Task(
                id="cancel_internet",
                title="cancel the internet service",
                label="cancelling my internet service",
                dept="retention",
                field="status",
                initial="active",
                target="cancelled",
                request="We're switching providers. Please call {company} and cancel my "
                "internet service.",
                menu=(
                    "for changes to your account",
                    "to cancel, pause or transfer your service",
                    "to cancel your service",
                ),
                done="Your service is cancelled; return the modem within 30 days.",
                trap=_Trap(
                    "pause_service",
                    "a temporary suspension of my service",
                    (("status", "suspended"),),
                    (),
                    "A suspension or pause is not what I want - cancel it.",
                ),
                offer=_OfferSpec(
                    "Before I cancel, I can give you three months at half price if you stay. "
                    "Would you like that?",
                    "promotion",
                    "half_price_3_months",
                ),
            ),
            _Task(
                id="replace_modem",
                title="get a replacement for a broken modem",
                label="a replacement for my broken modem",
                dept="tech_support",
                field="modem",
                initial="faulty",
                target="replacement_shipped",
                request="My {company} modem died - it won't power on at all. Please call them "
                "and get a replacement sent out.",
                menu=(
                    "for technical support",
                    "for problems with your modem or router",
                    "if your equipment is damaged or won't power on",
                ),
                done="A replacement modem ships today; it should arrive in two days.",
                trap=_Trap(
                    "modem_reset",
                    "a remote reset of my modem",
                    (("modem", "reset_sent"),),
                    (),
                    "It's not a reset problem; it's dead.",
                ),
            ),
            _Task(
                id="speed_upgrade",
                title="upgrade to the gigabit plan",
                label="an upgrade to the gigabit plan",
                dept="sales",
                field="plan",
                initial="internet_300",
                target="gigabit_1000",
                request="We work from home now. Please call {company} and upgrade my internet "
                "to the gigabit plan.",
                menu=(
                    "for plans and upgrades",
                    "to change your internet speed",
                    "to upgrade to a faster plan",
                ),
                done="You're on the gigabit plan as of tonight.",
            ),
        ),
        extras=_extras(
            """
            paperless_billing | paperless billing | billing | paper_bills | on | off
            static_ip | a static IP address | sales | = | off | on | 10
            streaming_bundle | the streaming bundle | sales | bundle | none | streaming
            outage_credit | a credit for last week's outage | billing | = | none | applied
            wifi_extender | a wifi extender | tech_support | extender | none | shipped | 5
            install_visit | an installation appointment | installations | = | none | scheduled
            """
        ),
        rules=(
            _Rule(
                "customer_tenure",
                "how long they've been a customer",
                ("over_2_years", "over_5_years"),
                "I'm sorry, that's only available to customers of two years or more.",
            ),
        ),
        upsells=(
            _OfferSpec(
                "While I have you, I can add our streaming bundle for just $10 more a month. "
                "Would you like that instead?",
                "bundle",
                "streaming_upsell",
            ),
        ),
    ),
    _Domain(
        kind="bank",
        suffixes=("Bank", "Savings Bank", "Credit Union", "Federal Credit Union", "Trust"),
        general=_GENERAL,
        depts=(
            _Dept("card_services", "credit card services", "for credit cards"),
            _Dept("disputes", "card disputes", "to dispute a charge"),
            _Dept("fraud", "fraud prevention", "to report a lost or stolen card or fraud"),
            _Dept("deposit_accounts", "checking and savings", "for checking and savings"),
            _Dept("loans", "loans and mortgages", "for mortgages and loans"),
            _Dept("digital_banking", "online banking support", "for online and mobile banking"),
        ),
        id_fact=("account_number", "account number", "d9"),
        tasks=(
            _Task(
                id="dispute_charge",
                title="dispute a duplicate card charge",
                label="disputing a duplicate charge on my card",
                dept="disputes",
                field="duplicate_charge",
                initial="posted",
                target="disputed",
                request="{merchant} charged my {company} card twice for the same ${amount} "
                "purchase. Please call them and dispute the duplicate charge.",
                menu=(
                    "for credit cards",
                    "for questions about a transaction",
                    "if you were charged incorrectly or more than once",
                ),
                done="I've opened a dispute and issued a provisional credit of ${amount}.",
                trap=_Trap(
                    "report_fraud",
                    "reporting fraud on my card",
                    (("duplicate_charge", "fraud_claim"), ("card_status", "closed")),
                    (("card_status", "active"),),
                    "It's not fraud - I made the purchase - and I want to keep my card.",
                ),
            ),
            _Task(
                id="waive_late_fee",
                title="get a late fee waived",
                label="waiving the late fee on my last statement",
                dept="card_services",
                field="late_fee",
                initial="charged",
                target="waived",
                request="I paid my {company} card one day late and got a late fee. Please call "
                "and ask them to waive it.",
                menu=(
                    "for credit cards",
                    "for your statement, fees and payments",
                    "for questions about fees or interest charges",
                ),
                done="As a courtesy I've waived the late fee; it'll show as a credit.",
                rule=_Rule(
                    "late_payments_this_year",
                    "number of late payments this year",
                    ("0", "1"),
                    "I'm sorry, we can only waive one late fee per year.",
                ),
            ),
            _Task(
                id="travel_notice",
                title="set a travel notice on a debit card",
                label="a travel notice on my debit card",
                dept="deposit_accounts",
                field="travel_notice",
                initial="none",
                target="portugal_two_weeks",
                request="I'm going to Portugal for two weeks starting {date}. Please call "
                "{company} and put a travel notice on my debit card so it isn't blocked.",
                menu=(
                    "for checking and savings",
                    "for your debit card",
                    "to tell us you're travelling",
                ),
                done="The travel notice is on; enjoy your trip.",
            ),
            _Task(
                id="close_savings",
                title="close a savings account",
                label="closing my savings account",
                dept="deposit_accounts",
                field="savings_account",
                initial="open",
                target="closed_balance_moved",
                request="Please call {company} and close my savings account; move the balance "
                "into my checking account.",
                menu=(
                    "for checking and savings",
                    "to open or close an account",
                    "to close an account",
                ),
                done="The savings account is closed and the balance is in checking.",
                offer=_OfferSpec(
                    "Before I close it, I can upgrade it to our high-yield savings at 4.1 "
                    "percent instead. Would you like to do that?",
                    None,
                    "upgraded_high_yield",
                ),
            ),
        ),
        extras=_extras(
            """
            order_checks | ordering checks | deposit_accounts | checks | none | ordered | 18
            credit_limit | a credit limit increase | card_services | = | 5000 | 8000
            replace_card | a replacement card | fraud | replacement_card | none | ordered
            paperless_statements | paperless statements | deposit_accounts | paper | on | off
            password_reset | an online banking password reset | digital_banking | = | none | sent
            refinance_quote | a refinance quote | loans | refi_quote | none | sent
            overdraft_protection | overdraft protection | deposit_accounts | = | off | on | 12
            """
        ),
        rules=(
            _Rule(
                "banking_package",
                "banking package",
                ("preferred", "premier"),
                "I'm sorry, that's only available on Preferred and Premier accounts.",
            ),
        ),
        upsells=(
            _OfferSpec(
                "Before I do that, you're pre-approved for our travel rewards card. Would you "
                "like me to open it for you instead?",
                "rewards_card",
                "opened",
            ),
        ),
    ),
    _Domain(
        kind="airline",
        suffixes=("Airlines", "Air", "Airways"),
        general=_Dept("customer_service", "customer relations", "for all other questions"),
        depts=(
            _Dept("reservations", "reservations", "to book or change a reservation"),
            _Dept("baggage", "baggage services", "for lost or delayed baggage"),
            _Dept("loyalty", "frequent flyer services", "for our frequent flyer program"),
            _Dept("refunds", "refunds", "for refunds and travel credits"),
            _Dept(
                "special_assistance", "special assistance", "for wheelchair and special assistance"
            ),
        ),
        id_fact=("confirmation_code", "booking confirmation code", "code6"),
        tasks=(
            _Task(
                id="change_flight",
                title="move to a later flight",
                label="moving my booking to a later flight the same day",
                dept="reservations",
                field="booked_flight",
                initial="flight_{flight_old}",
                target="flight_{flight_new}",
                request="Please call {company} and move me from flight {flight_old} to the later "
                "flight {flight_new} on {date}, same route.",
                menu=(
                    "for reservations",
                    "to change an existing reservation",
                    "to change your flight",
                ),
                done="You're confirmed on flight {flight_new}; your seat is 14C.",
                trap=_Trap(
                    "cancel_booking",
                    "cancelling my booking for a travel credit",
                    (("booked_flight", "cancelled_for_credit"),),
                    (),
                    "Don't cancel the trip; I still need to fly.",
                ),
            ),
            _Task(
                id="cash_refund",
                title="get a cash refund for a cancelled flight",
                label="a refund to my card for the flight you cancelled",
                dept="refunds",
                field="refund",
                initial="none",
                target="refund_to_card_{amount}",
                request="{company} cancelled my flight on {date}. Please call them and get the "
                "${amount} fare refunded to my card.",
                menu=(
                    "for refunds and travel credits",
                    "if your flight was cancelled",
                    "to request a refund",
                ),
                done="I've refunded ${amount} to the original card; allow 7 business days.",
                trap=_Trap(
                    "travel_credit",
                    "a travel credit for the cancelled flight",
                    (("refund", "travel_credit_{amount}"),),
                    (),
                    "I want money back on my card, not a travel credit.",
                ),
                offer=_OfferSpec(
                    "I can give you a travel credit worth 20 percent more than the fare instead "
                    "of a refund. Would you like the credit?",
                    None,
                    "bonus_travel_credit",
                ),
            ),
            _Task(
                id="missing_miles",
                title="get missing miles credited",
                label="crediting miles missing from my last trip",
                dept="loyalty",
                field="missing_miles",
                initial="not_credited",
                target="credited",
                request="My miles for my {company} flight on {date} never showed up. Please "
                "call them and get the missing miles credited.",
                menu=(
                    "for our frequent flyer program",
                    "for questions about your miles",
                    "for missing miles",
                ),
                done="I've credited the miles; they'll post within 48 hours.",
            ),
            _Task(
                id="wheelchair",
                title="book wheelchair assistance",
                label="wheelchair assistance at the airport",
                dept="special_assistance",
                field="assistance",
                initial="none",
                target="wheelchair_booked",
                request="I've hurt my knee and I fly with {company} on {date}. Please call and "
                "book wheelchair assistance for the trip.",
                menu=(
                    "for travel assistance",
                    "for special assistance",
                    "to request a wheelchair",
                ),
                done="Wheelchair assistance is booked at both airports.",
            ),
        ),
        extras=_extras(
            """
            seat_upgrade | an extra-legroom seat | reservations | seat | standard | legroom | 39
            extra_bag | adding a checked bag | reservations | checked_bags | 0 | 1 | 35
            meal_request | a special meal | special_assistance | meal | standard | vegetarian
            buy_miles | buying miles | loyalty | bought_miles | 0 | 5000 | 20
            bag_claim | a delayed bag claim | baggage | = | none | filed
            pet_in_cabin | bringing my pet in the cabin | reservations | pet | none | cabin | 95
            """
        ),
        rules=(
            _Rule(
                "loyalty_status",
                "frequent flyer status",
                ("gold", "platinum", "diamond"),
                "I'm sorry, that's only available to Gold members and above.",
            ),
        ),
        upsells=(
            _OfferSpec(
                "Before I do that, I can upgrade you to first class on that trip for $89. "
                "Would you like that?",
                "cabin_upgrade",
                "first_class",
            ),
        ),
    ),
    _Domain(
        kind="utility",
        suffixes=("Power & Light", "Energy", "Electric", "Gas & Electric"),
        general=_GENERAL,
        depts=(
            _Dept("account_services", "account services", "to update your account details"),
            _Dept("start_stop_move", "start, stop and move", "to start, stop or move service"),
            _Dept("billing", "billing and payments", "for billing and payments"),
            _Dept("outages", "outage reporting", "to report an outage"),
            _Dept("energy_programs", "energy programs", "for rebates and energy programs"),
        ),
        id_fact=("account_number", "account number", "d10"),
        tasks=(
            _Task(
                id="update_mailing_address",
                title="change the mailing address for bills",
                label="changing the mailing address for my bills",
                dept="account_services",
                field="mailing_address",
                initial="the service address",
                target="{new_address}",
                request="Please call {company} and change the mailing address for my bills to "
                "{new_address}. I'm keeping the house as a rental, so the service stays on.",
                menu=(
                    "to update your account details",
                    "to change your contact information",
                    "to change your mailing address",
                ),
                done="Bills will go to {new_address} from the next statement.",
                trap=_Trap(
                    "move_service",
                    "moving my service to a new address",
                    (("mailing_address", "{new_address}"), ("service_status", "stop_scheduled")),
                    (("service_status", "active"),),
                    "Don't stop or move the service at the house.",
                ),
            ),
            _Task(
                id="payment_arrangement",
                title="set up a payment arrangement",
                label="a payment arrangement for my past-due balance",
                dept="billing",
                field="payment_plan",
                initial="none",
                target="three_month_arrangement",
                request="I can't pay my {company} balance of ${amount} all at once. Please call "
                "and set up a payment arrangement to spread it over a few months.",
                menu=(
                    "for billing and payments",
                    "if you need help paying your bill",
                    "to set up a payment arrangement",
                ),
                done="Your ${amount} balance is split over three months.",
                trap=_Trap(
                    "budget_billing",
                    "the budget billing plan",
                    (("payment_plan", "budget_billing"),),
                    (),
                    "Budget billing isn't what I need; I need an arrangement for the balance.",
                ),
            ),
            _Task(
                id="medical_priority",
                title="register for medical priority status",
                label="registering a medical device on my account",
                dept="account_services",
                field="medical_priority",
                initial="no",
                target="registered",
                request="My father uses a home oxygen machine. Please call {company} and register "
                "it on my account so we get priority during outages.",
                menu=(
                    "to update your account details",
                    "for medical and accessibility needs",
                    "to register life-support equipment",
                ),
                done="The account is flagged for medical priority.",
            ),
            _Task(
                id="stop_service",
                title="stop service at the old address",
                label="stopping service at my old address",
                dept="start_stop_move",
                field="service_status",
                initial="active",
                target="stop_scheduled",
                request="I've moved out. Please call {company} and stop the electric service at "
                "my old address as of {date}.",
                menu=(
                    "to start, stop or move service",
                    "to stop service",
                    "to stop service at an address you're leaving",
                ),
                done="Service will stop on {date}; the final bill follows in two weeks.",
                offer=_OfferSpec(
                    "Instead of stopping it, would you like to move your service to your new "
                    "address so there's no gap?",
                    None,
                    "move_scheduled",
                ),
            ),
        ),
        extras=_extras(
            """
            paperless | paperless billing | billing | = | off | on
            autopay | autopay | billing | = | off | on
            energy_audit | a home energy audit | energy_programs | = | none | scheduled | 25
            thermostat_rebate | the smart thermostat rebate | energy_programs | = | none | applied
            outage_ticket | reporting an outage | outages | = | none | opened
            meter_reading | a special meter reading | billing | = | none | scheduled | 15
            """
        ),
        rules=(
            _Rule(
                "account_type",
                "account type",
                ("residential",),
                "I'm sorry, that's only available on residential accounts.",
            ),
        ),
        upsells=(
            _OfferSpec(
                "Before I do that, would you like to join our green power program for $4 a "
                "month instead?",
                "green_power",
                "enrolled",
            ),
        ),
    ),
    _Domain(
        kind="insurer",
        suffixes=("Insurance", "Mutual", "Assurance", "Insurance Group"),
        general=_GENERAL,
        depts=(
            _Dept("claims", "claims", "to file or check on a claim"),
            _Dept("policy_services", "policy services", "to make changes to your policy"),
            _Dept("billing", "billing", "for billing and payments"),
            _Dept("roadside", "roadside assistance", "for roadside assistance"),
            _Dept("sales", "sales", "for a quote on a new policy"),
        ),
        id_fact=("policy_number", "policy number", "policy"),
        tasks=(
            _Task(
                id="add_driver",
                title="add a teenage driver to the auto policy",
                label="adding a driver to my auto policy",
                dept="policy_services",
                field="drivers",
                initial="1",
                target="2",
                request="My son {driver} just got his licence. Please call {company} and add him "
                "as a driver on my auto policy.",
                menu=(
                    "to make changes to your policy",
                    "for auto policy changes",
                    "to add or remove a driver",
                ),
                done="{driver} is on the policy from today; the new premium shows next month.",
            ),
            _Task(
                id="windshield_claim",
                title="file a windshield claim",
                label="filing a claim for a cracked windshield",
                dept="claims",
                field="glass_claim",
                initial="none",
                target="filed",
                request="A rock cracked my windshield on {date}. Please call {company} and file "
                "a glass claim on my auto policy.",
                menu=(
                    "to file or check on a claim",
                    "to file a new auto claim",
                    "for windshield and glass damage",
                ),
                done="The glass claim is filed; a repair shop will call you today.",
                trap=_Trap(
                    "collision_claim",
                    "filing a collision claim",
                    (("glass_claim", "collision_claim_filed"),),
                    (),
                    "It's just glass damage, not a collision.",
                ),
            ),
            _Task(
                id="cancel_policy",
                title="cancel a renters policy",
                label="cancelling my renters policy",
                dept="policy_services",
                field="renters_policy",
                initial="active",
                target="cancelled",
                request="I bought a house, so I don't need my {company} renters policy any more. "
                "Please call and cancel it as of {date}.",
                menu=(
                    "to make changes to your policy",
                    "for home and renters policies",
                    "to cancel a policy",
                ),
                done="The renters policy is cancelled; any refund goes to your card.",
                offer=_OfferSpec(
                    "Since you bought a home, I can convert the renters policy into a "
                    "homeowners policy with a bundle discount. Would you like that instead?",
                    None,
                    "converted_to_homeowners",
                ),
            ),
        ),
        extras=_extras(
            """
            id_card | a new proof-of-insurance card | policy_services | = | current | mailed
            tow_request | a tow truck | roadside | tow | none | dispatched
            autopay_insurance | paying by autopay | billing | autopay | off | on
            umbrella_quote | a quote for an umbrella policy | sales | = | none | sent
            accident_forgiveness | adding accident forgiveness | sales | = | off | on | 30
            rental_coverage | rental car coverage | policy_services | = | off | on | 8
            """
        ),
        rules=(
            _Rule(
                "claims_last_3_years",
                "number of claims in the last three years",
                ("0", "1"),
                "I'm sorry, with that claims history I can't make this change by phone.",
            ),
        ),
        upsells=(
            _OfferSpec(
                "While you're on the line, I can add roadside assistance for $3 a month. "
                "Would you like that instead?",
                "roadside_plan",
                "added",
            ),
        ),
    ),
    _Domain(
        kind="carrier",
        suffixes=("Mobile", "Wireless", "Cellular", "Telecom"),
        general=_Dept("customer_service", "customer care", "for all other questions"),
        depts=(
            _Dept("plans", "plans and features", "to change your plan or add features"),
            _Dept("billing", "billing", "for billing and payments"),
            _Dept("device_support", "device support", "for help with your phone"),
            _Dept("upgrades", "upgrades", "to upgrade your phone or add a line"),
            _Dept("retention", "customer loyalty", "to cancel a line"),
        ),
        id_fact=("account_number", "account number", "d9"),
        tasks=(
            _Task(
                id="change_plan",
                title="switch to the Unlimited Plus plan",
                label="changing my plan to Unlimited Plus",
                dept="plans",
                field="plan",
                initial="essentials_15gb",
                target="unlimited_plus",
                request="I keep running out of data. Please call {company} and switch my line to "
                "the Unlimited Plus plan.",
                menu=(
                    "to change your plan or add features",
                    "for monthly plans",
                    "to change your plan",
                ),
                done="You're on Unlimited Plus from your next cycle.",
            ),
            _Task(
                id="unlock_phone",
                title="get a paid-off phone unlocked",
                label="unlocking my phone",
                dept="device_support",
                field="device_lock",
                initial="locked",
                target="unlock_requested",
                request="I'm travelling abroad and want a local SIM. My phone is paid off - "
                "please call {company} and get it unlocked.",
                menu=(
                    "for help with your phone",
                    "for settings and SIM cards",
                    "to unlock your device",
                ),
                done="The unlock request is in; restart the phone tomorrow.",
                rule=_Rule(
                    "device_paid_off",
                    "whether the phone is paid off",
                    ("yes",),
                    "I'm sorry, the device has to be paid off before we can unlock it.",
                ),
                trap=_Trap(
                    "intl_pass",
                    "an international roaming pass",
                    (("device_lock", "locked"), ("roaming", "intl_pass")),
                    (("roaming", "off"),),
                    "I don't want a roaming pass - I'll use a local SIM.",
                ),
            ),
            _Task(
                id="cancel_line",
                title="cancel a second line",
                label="cancelling the second line on my account",
                dept="retention",
                field="second_line",
                initial="active",
                target="cancelled",
                request="My daughter has her own plan now. Please call {company} and cancel the "
                "second line on my account.",
                menu=(
                    "for changes to your account",
                    "to add or remove a line",
                    "to cancel a line",
                ),
                done="The second line is cancelled at the end of the cycle.",
                offer=_OfferSpec(
                    "Before I do that, I can make that line free for six months. Would you like "
                    "to keep it?",
                    "promotion",
                    "free_line_6_months",
                ),
                trap=_Trap(
                    "suspend_line",
                    "suspending the second line",
                    (("second_line", "suspended"),),
                    (),
                    "Don't suspend it, cancel it.",
                ),
            ),
        ),
        extras=_extras(
            """
            device_protection | device protection | device_support | protection | none | added | 15
            hotspot_addon | the hotspot add-on | plans | hotspot | off | on | 10
            phone_upgrade | upgrading my phone | upgrades | device | current | upgrade_ordered | 45
            autopay_credit | autopay | billing | autopay | off | on
            number_change | a new phone number | device_support | number | current | changed | 20
            add_line | adding a line | upgrades | lines | 2 | 3
            """
        ),
        rules=(),
        upsells=(
            _OfferSpec(
                "Before I do that, you qualify for a free phone upgrade with a new 24-month "
                "agreement. Would you like that?",
                "agreement",
                "new_24_month",
            ),
        ),
    ),
    _Domain(
        kind="gym",
        suffixes=("Fitness", "Athletic Club", "Health Clubs"),
        general=_Dept("customer_service", "member services", "for all other questions"),
        depts=(
            _Dept("memberships", "memberships", "for your membership"),
            _Dept("billing", "billing", "for billing and dues"),
            _Dept("retention", "member retention", "to cancel your membership"),
            _Dept("personal_training", "personal training", "for personal training"),
        ),
        id_fact=("member_number", "member number", "d8"),
        tasks=(
            _Task(
                id="cancel_membership",
                title="cancel a gym membership",
                label="cancelling my membership",
                dept="retention",
                field="membership",
                initial="active",
                target="cancelled",
                request="I'm moving across the country. Please call {company} and cancel my "
                "membership.",
                menu=(
                    "for your membership",
                    "to freeze or cancel your membership",
                    "to cancel your membership",
                ),
                done="Your membership is cancelled; no further dues will be drafted.",
                offer=_OfferSpec(
                    "I'd hate to lose you - I can drop your dues to $9.99 a month for a year. "
                    "Want to stay on at that rate?",
                    "membership",
                    "active_discounted",
                    "active",
                ),
                trap=_Trap(
                    "freeze_membership",
                    "freezing my membership",
                    (("membership", "frozen"),),
                    (),
                    "Don't freeze it - I want it cancelled.",
                ),
            ),
            _Task(
                id="change_home_club",
                title="change the home club",
                label="changing my home club",
                dept="memberships",
                field="home_club",
                initial="downtown",
                target="{club}",
                request="Please call {company} and change my home club to the {club} location; "
                "it's closer to my new job.",
                menu=(
                    "for your membership",
                    "to change your membership details",
                    "to change your home club",
                ),
                done="Your home club is now {club}.",
            ),
            _Task(
                id="waive_annual_fee",
                title="get the annual fee waived",
                label="waiving this year's annual fee",
                dept="billing",
                field="annual_fee",
                initial="due",
                target="waived",
                request="The {company} annual fee is due next week. I was told it can be waived "
                "for long-time members - please call and get it waived.",
                menu=(
                    "for billing and dues",
                    "for fees and charges",
                    "for questions about the annual fee",
                ),
                done="I've waived this year's annual fee.",
            ),
        ),
        extras=_extras(
            """
            training_session | a personal training session | personal_training | = | none | set | 40
            guest_pass | a guest pass | memberships | = | none | issued
            update_card | updating my card for dues | billing | dues_card | current | updated
            towel_service | towel service | memberships | towels | off | on | 5
            locker_rental | a locker rental | memberships | locker | none | rented | 12
            """
        ),
        rules=(
            _Rule(
                "membership_type",
                "membership type",
                ("premium", "all_access"),
                "I'm sorry, that's only for Premium and All-Access members.",
            ),
        ),
        upsells=(
            _OfferSpec(
                "Before I do that, I can give you three free personal training sessions if you "
                "upgrade to Premium. Interested?",
                "tier",
                "premium_upgrade",
            ),
        ),
    ),
)

_PREFIXES = (
    "Skyline",
    "Harborline",
    "Summit",
    "Pinecrest",
    "Northwind",
    "Cascade",
    "Redwood",
    "Lakeshore",
    "Silverline",
    "Meridian",
    "Keystone",
    "Beacon",
    "Bluewater",
    "Granite",
    "Evergreen",
    "Sunrise",
    "Tidewater",
    "Frontier",
    "Horizon",
    "Riverbend",
    "Prairie",
    "Copperleaf",
    "Bayside",
    "Westfield",
)
_FIRST = (
    "Robert",
    "Helen",
    "Denise",
    "Martin",
    "Priya",
    "Walter",
    "Aisha",
    "Diego",
    "Mei",
    "Tom",
    "Grace",
    "Omar",
    "Ingrid",
    "Kwame",
    "Lucia",
    "Hiroshi",
    "Fatima",
    "Brendan",
    "Nadia",
    "Samuel",
)
_LAST = (
    "Alvarez",
    "Park",
    "Okafor",
    "Lindqvist",
    "Natarajan",
    "Brandt",
    "Haddad",
    "Moreno",
    "Chen",
    "Kowalski",
    "Osei",
    "Novak",
    "Fitzgerald",
    "Tanaka",
    "Rahman",
    "Silva",
    "Dubois",
    "Abbott",
)
_REPS = (
    "Sam",
    "Priya",
    "Marco",
    "Dana",
    "Keisha",
    "Jordan",
    "Alicia",
    "Tom",
    "Mei",
    "Andre",
    "Grace",
    "Luis",
    "Naomi",
    "Victor",
    "Hannah",
    "Omar",
    "Beth",
    "Raj",
    "Colleen",
    "Ahmed",
    "Chris",
    "Fatima",
    "Ben",
    "Yuki",
    "Carlos",
    "Linda",
    "Kevin",
    "Rosa",
    "Imani",
)
_MERCHANTS = (
    "Greenleaf Grocers",
    "Cornerstone Pharmacy",
    "Blue Oak Diner",
    "Metro Hardware",
    "Sunset Cinemas",
    "Pacific Fuel",
)
_STREETS = (
    "Quarry Road",
    "Maple Avenue",
    "Linden Court",
    "Harbor Street",
    "Orchard Lane",
    "Birch Way",
    "Ridge Drive",
)
_CITIES = (
    ("Bend", "OR"),
    ("Ames", "IA"),
    ("Salem", "MA"),
    ("Boise", "ID"),
    ("Durham", "NC"),
    ("Madison", "WI"),
)
_MONTHS = ("March", "April", "May", "June", "July", "August", "September", "October")
_CLUBS = ("eastgate", "riverside", "north_park", "midtown")
_PETS = ("Biscuit", "Shadow", "Pepper", "Milo", "Juniper", "Rocket")
_AREAS = ("800", "888", "877", "866", "855", "844")

# (id, label, format) of facts that reps can verify (beyond the domain's identifying fact).
_SECRETS: tuple[tuple[str, str, str], ...] = (
    ("account_pin", "four-digit account PIN", "d4"),
    ("date_of_birth", "date of birth", "date"),
    ("billing_zip", "billing ZIP code", "d5"),
    ("card_last4", "last four digits of the card on file", "d4"),
    ("ssn_last4", "last four digits of the Social Security number", "d4"),
    ("security_answer", "answer to the security question (first pet's name)", "pet"),
    ("email_on_file", "email address on the account", "email"),
    ("mothers_maiden_name", "mother's maiden name", "surname"),
)

_OFFER_HINTS = (
    "Please don't sign me up for anything else.",
    "They may try to sell me something or offer a deal - say no to anything extra.",
    "Don't accept any offers or deals; just do what I asked.",
)
_GREETINGS = (
    (
        "Thank you for calling {company} {department}, this is {rep}. How can I help?",
        "{company}, {rep} speaking. What can I do for you today?",
    ),
    (
        "Hi, you've reached {department} at {company}. My name is {rep}. How may I help you?",
        "This is {rep} with {company} {department}. What can I help you with?",
    ),
)


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def _fmt_value(rng: random.Random, kind: str, first: str, last: str) -> str:
    """A fact value of the given format kind.

    Args:
        rng: the scenario's random source.
        kind: ``d<N>`` (N digits), ``date``, ``pet``, ``email``, ``surname``, ``code6`` or
            ``policy``.
        first: the user's first name (for e-mail addresses).
        last: the user's last name (for e-mail addresses).

    Returns:
        The value as a string.
    """
    if kind[0] == "d" and kind[1:].isdigit():
        n = int(kind[1:])
        return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))
    if kind == "date":
        return f"{rng.randint(1945, 2001)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "pet":
        return rng.choice(_PETS)
    if kind == "email":
        return f"{first[0].lower()}.{last.lower()}{rng.randint(10, 99)}@mail.example"
    if kind == "surname":
        return rng.choice([x for x in _LAST if x != last])
    if kind == "code6":
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        return "".join(rng.choice(letters) for _ in range(6))
    if kind == "policy":
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        digits = "".join(str(rng.randint(0, 9)) for _ in range(8))
        return f"{rng.choice(letters)}{rng.choice(letters)}-{digits}"
    raise ValueError(f"unknown fact format {kind!r}")


def _cap(phrase: str) -> str:
    """Capitalise the first letter of an IVR phrase."""
    return phrase[:1].upper() + phrase[1:]


def _second_person(label: str) -> str:
    """A caller's phrase as the IVR says it: 'my modem' -> 'your modem'."""
    return " ".join({"my": "your", "me": "you", "I": "you"}.get(w, w) for w in label.split())


def _prompt(intro: str, options: list[tuple[str, str]]) -> str:
    """An IVR prompt: the intro, then 'Phrase, press K.' for each (key, phrase)."""
    parts = [intro] if intro else []
    for key, phrase in options:
        key_word = {"*": "star", "#": "pound"}.get(key, key)
        parts.append(f"{_cap(phrase)}, press {key_word}.")
    return " ".join(parts)


@dataclass
class _Knobs:
    """The concrete dial settings drawn for one scenario."""

    ivr_depth: int
    n_verify: int
    n_unknown: int
    eligibility: bool
    mode: str  # "direct", "transfer" or "call_other"
    fee: bool
    pricier_twin: bool
    offer: bool
    trap: bool
    n_depts: int
    n_extras: int
    n_numbers: int
    hold_max: int
    call_budget: int
    calls_per_number: int
    max_failures: int
    hints: bool
    options_per_menu: int


def _knobs(rng: random.Random, d: int) -> _Knobs:
    """Draw the dial settings for difficulty ``d`` (see the module docstring's table)."""
    ivr_depth = [0, 1, 2, rng.randint(2, 3), 3][d]
    n_verify = [1, rng.randint(1, 2), 2, rng.randint(2, 3), rng.randint(3, 4)][d]
    n_unknown = [0, rng.randint(0, 1), 1, rng.randint(1, 2), rng.randint(2, 3)][d]
    eligibility = [False, False, rng.random() < 0.5, True, True][d]
    r = rng.random()
    if d <= 1:
        mode = "direct"
    elif d == 2:
        mode = "transfer" if r < 0.4 else "direct"
    elif d == 3:
        mode = "transfer" if r < 0.4 else "call_other" if r < 0.7 else "direct"
    else:
        mode = "transfer" if r < 0.3 else "call_other" if r < 0.8 else "direct"
    fee = d >= 2 and rng.random() < (0.5 if d == 2 else 0.6)
    pricier_twin = fee and d >= 3
    offer = d >= 3 and rng.random() < (0.4 if d == 3 else 0.6)
    trap = d >= 2 and rng.random() < [0, 0, 0.5, 0.7, 1.0][d]
    n_depts = [0, 1, rng.randint(1, 2), rng.randint(2, 3), rng.randint(3, 4)][d]
    n_extras = [1, rng.randint(1, 2), rng.randint(2, 3), rng.randint(3, 4), rng.randint(4, 5)][d]
    n_numbers = [0, rng.randint(0, 1), 1, rng.randint(1, 2), rng.randint(2, 3)][d]
    hold_max = [0, 2, 3, 5, 7][d]
    if mode == "call_other":
        call_budget = 2 if d == 4 else rng.randint(2, 3)
    else:
        call_budget = [3, 3, 3, rng.randint(2, 3), rng.randint(1, 2)][d]
    calls_per_number = [3, 3, 3, 2, rng.randint(1, 2)][d]
    max_failures = [3, 2, 2, 2, 1][d]
    hints = d < 4 or rng.random() < 0.5
    options_per_menu = [0, rng.randint(1, 2), 2, rng.randint(2, 3), rng.randint(3, 4)][d]
    return _Knobs(
        ivr_depth,
        n_verify,
        n_unknown,
        eligibility,
        mode,
        fee,
        pricier_twin,
        offer,
        trap,
        n_depts,
        n_extras,
        n_numbers,
        hold_max,
        call_budget,
        calls_per_number,
        max_failures,
        hints,
        options_per_menu,
    )


def _hold(rng: random.Random, hold_max: int) -> tuple[int, int]:
    """A hold range ``[lo, hi]`` with ``hi <= hold_max``."""
    if hold_max == 0:
        return (0, 0)
    hi = rng.randint(max(1, hold_max // 2), hold_max)
    lo = rng.randint(0, hi // 2)
    return (lo, hi)


HALF_LEVELS = (0.5,)
"""Levels between the integer difficulties (a gentler first step of the ladder):
0.5 is level 0 (nothing to ask, no distractor department or number) behind a one-option IVR
menu, with a short, varying hold (up to 2 steps)."""

LEVELS = (0, 0.5, 1, 2, 3, 4)
"""Every generator level, easiest first (the curriculum ladder)."""


def _half_level_knobs(rng: random.Random, d: float) -> _Knobs:
    """The knobs of a half level (see :data:`HALF_LEVELS`): level 0's, plus a menu and a hold."""
    k = _knobs(rng, 0)
    return dataclasses.replace(k, ivr_depth=1, options_per_menu=1, hold_max=2)


def generate_scenario(seed: int, difficulty: float) -> PhoneScenario:
    """Generate one solvable phone scenario.

    The result depends only on ``(seed, difficulty)``: the same pair always gives the same
    scenario, and no global random state is read or changed.

    Args:
        seed: any integer; picks the company, task, facts, menus and every other detail.
        difficulty: 0 (one number straight to the right department, nothing to ask) to 4 (deep
            IVR, several facts to ask for, eligibility, a transfer or a second number, fees,
            offers, traps, long holds and a tight call budget). See the module docstring.
            Integer-like values (e.g. numpy integers) are accepted.

    Returns:
        A scenario named ``generated_d{difficulty}_s{seed}`` that passes pydantic validation
        and :func:`~envgym.phone.models.check_references` and that a perfect caller can solve
        within ``constraints.max_turns`` (with at least 2x slack) and the call budget.

    Raises:
        ValueError: if ``difficulty`` is not an integer in ``0..4`` or a half level (0.5).
    """
    if isinstance(difficulty, float) and difficulty in HALF_LEVELS:
        return _generate(operator.index(seed), difficulty)
    try:
        if isinstance(difficulty, bool):
            raise TypeError
        difficulty = operator.index(difficulty)
        seed = operator.index(seed)
    except TypeError:
        raise ValueError(
            f"seed and difficulty must be integers (difficulty 0..{MAX_DIFFICULTY}), "
            f"got seed={seed!r}, difficulty={difficulty!r}"
        ) from None
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty must be in 0..{MAX_DIFFICULTY}, got {difficulty}")
    return _generate(seed, difficulty)


def _generate(seed: int, level: float) -> PhoneScenario:
    """:func:`generate_scenario` for a checked level (an int, or one of HALF_LEVELS: drawn
    with its own knobs and otherwise built as the integer level below it)."""
    half = level in HALF_LEVELS
    d = int(level)
    rng = random.Random(seed * 7919 + (d if not half else 1000 + int(level * 100)))
    k = _half_level_knobs(rng, level) if half else _knobs(rng, d)
    level_name = f"{level:g}".replace(".", "_")  # 0.5 -> "0_5" (names are identifiers)

    dom = rng.choice(_DOMAINS)
    task = rng.choice(dom.tasks)
    company = f"{rng.choice(_PREFIXES)} {rng.choice(dom.suffixes)}"
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, state = rng.choice(_CITIES)
    flight_old = rng.randint(100, 2899)
    slots = {
        "company": company,
        "amount": f"{rng.randint(12, 480)}.{rng.randint(0, 99):02d}",
        "merchant": rng.choice(_MERCHANTS),
        "new_address": f"{rng.randint(10, 2999)} {rng.choice(_STREETS)}, {city}, {state} "
        f"{rng.randint(10000, 99999)}",
        "flight_old": str(flight_old),
        "flight_new": str(flight_old + rng.choice((2, 4, 6, 8))),
        "date": f"{rng.choice(_MONTHS)} {rng.randint(2, 28)}",
        "driver": rng.choice(("Eli", "Marcus", "Owen", "Theo", "Caleb")),
        "club": rng.choice(_CLUBS),
    }

    def fill(text: str) -> str:
        return text.format(**slots)

    # ---- departments ------------------------------------------------------------------------
    dept_by_id = {x.id: x for x in (*dom.depts, dom.general)}
    target = dept_by_id[task.dept]
    entry = dom.general if k.mode != "direct" else target
    pool = [x for x in dom.depts if x.id not in (target.id, entry.id)]
    if k.mode == "direct" and d >= 2:
        pool.append(dom.general)
    rng.shuffle(pool)
    distractor_depts = pool[: min(k.n_depts, len(pool))]
    used_depts = [target] + ([entry] if entry is not target else []) + distractor_depts

    def transfers_flag(dept: _Dept) -> bool:
        if k.mode == "call_other":
            return False
        if dept is entry or dept is target:
            return True
        return not (d >= 3 and rng.random() < 0.3)

    departments: dict[str, Department] = {}
    for dept in used_depts:
        hold = _hold(rng, k.hold_max)
        if dept is entry and entry is not target and d >= 2:
            hold = (hold[0], max(hold[1], min(k.hold_max, hold[1] + 1)))
        departments[dept.id] = Department(
            id=dept.id, label=dept.label, hold=hold, transfers=transfers_flag(dept)
        )

    # ---- facts ------------------------------------------------------------------------------
    id_fid, id_label, id_kind = dom.id_fact
    secrets = [s for s in _SECRETS if s[0] != id_fid]
    rng.shuffle(secrets)
    verify_secrets = secrets[: k.n_verify - 1]
    spare_secrets = secrets[k.n_verify - 1 :]
    verify = [id_fid] + [s[0] for s in verify_secrets]
    n_unknown = min(k.n_unknown, len(verify_secrets))
    unknown = {s[0] for s in rng.sample(verify_secrets, n_unknown)}

    facts: list[Fact] = [
        Fact(
            id=id_fid,
            label=id_label,
            value=_fmt_value(rng, id_kind, first, last),
            known_to_assistant=True,
        )
    ]
    for fid, label, kind in verify_secrets:
        facts.append(
            Fact(
                id=fid,
                label=label,
                value=_fmt_value(rng, kind, first, last),
                known_to_assistant=fid not in unknown,
            )
        )

    rule: _Rule | None = None
    if k.eligibility:
        candidates = [r for r in (task.rule, *dom.rules, *_ROLE_RULES) if r is not None]
        rule = task.rule if task.rule is not None and rng.random() < 0.7 else rng.choice(candidates)
        elig_known = d < 3 or rng.random() < 0.5
        facts.append(
            Fact(
                id=rule.fact,
                label=rule.label,
                value=rng.choice(rule.allowed),
                known_to_assistant=elig_known,
                sensitive=rule.fact not in ("account_role", "account_type", "device_paid_off"),
            )
        )

    n_spare = min(len(spare_secrets), [0, 1, 1, 2, 3][d])
    for fid, label, kind in spare_secrets[:n_spare]:
        facts.append(
            Fact(
                id=fid,
                label=label,
                value=_fmt_value(rng, kind, first, last),
                known_to_assistant=rng.random() < 0.5,
            )
        )
    verifiable = [f.id for f in facts if f.id in {s[0] for s in _SECRETS}]

    # ---- records, goal, task service ----------------------------------------------------------
    records: dict[str, str] = {task.field: fill(task.initial)}
    goal: dict[str, str] = {task.field: fill(task.target)}

    fee = rng.choice((5, 10, 15, 20, 25)) if k.fee else 0
    max_fees = fee + (rng.choice((0, 5, 10)) if fee else 0)
    eligibility = (
        Eligibility(fact=rule.fact, allowed=list(rule.allowed), refusal=rule.refusal)
        if rule is not None
        else None
    )
    offer: Offer | None = None
    if k.offer:
        spec = task.offer if task.offer is not None and rng.random() < 0.7 else None
        if spec is None:
            spec = rng.choice(dom.upsells)
        field = spec.field or task.field
        if field != task.field:
            records.setdefault(field, spec.initial)
        offer = Offer(text=fill(spec.text), effects_if_accepted={field: spec.value})

    services: list[Service] = [
        Service(
            id=task.id,
            label=fill(task.label),
            department=target.id,
            verify=verify,
            eligibility=eligibility,
            offer=offer,
            fee=fee,
            effects=dict(goal),
            done=fill(task.done),
        )
    ]
    if k.pricier_twin:
        services.append(
            Service(
                id=f"{task.id}_priority",
                label=f"{fill(task.label)}, with priority processing",
                department=target.id,
                verify=verify,
                eligibility=eligibility,
                fee=max_fees + rng.choice((10, 15, 20, 30)),
                effects=dict(goal),
                done="Done, and it's flagged for priority processing.",
            )
        )

    request = [fill(task.request)]
    if k.trap and task.trap is not None:
        trap = task.trap
        for field, initial in trap.initials:
            records.setdefault(field, initial)
            goal.setdefault(field, initial)
        services.append(
            Service(
                id=trap.id,
                label=fill(trap.label),
                department=rng.choice([target.id, *[x.id for x in distractor_depts]]),
                verify=verify[: rng.randint(1, len(verify))],
                effects={f: fill(v) for f, v in trap.effects},
                done="Okay, that's all set.",
            )
        )
        request.append(trap.hint)

    # ---- distractor services --------------------------------------------------------------------
    taken_fields = set(records)
    taken_ids = {s.id for s in services}
    extras = [e for e in dom.extras if e.field not in taken_fields and e.id not in taken_ids]
    rng.shuffle(extras)
    # Prefer services whose own department is in the scenario; the rest fall back to the
    # general department (or the task's) rather than an unrelated one.
    extras.sort(key=lambda e: e.dept not in departments)
    fallback = dom.general.id if dom.general.id in departments else target.id
    for ex in extras[: k.n_extras]:
        dept_id = ex.dept if ex.dept in departments else fallback
        records[ex.field] = ex.initial
        services.append(
            Service(
                id=ex.id,
                label=ex.label,
                department=dept_id,
                verify=[id_fid, *rng.sample(verifiable, rng.randint(0, min(2, len(verifiable))))]
                if d > 0
                else [id_fid],
                fee=ex.fee if d >= 1 else 0,
                effects={ex.field: ex.value},
            )
        )

    if offer is not None:
        request.append(rng.choice(_OFFER_HINTS))
    if max_fees > 0:
        request.append(f"I'm okay paying up to ${max_fees} in fees, but no more.")
    elif any(s.fee for s in services):
        request.append("I don't want to pay any fees.")
    if k.call_budget < 3:
        plural = "call" if k.call_budget == 1 else "calls"
        request.append(f"Please make no more than {k.call_budget} {plural}.")

    # ---- IVR and numbers ----------------------------------------------------------------------
    used_digits: set[str] = set()

    def digits() -> str:
        while True:
            num = f"{rng.choice(_AREAS)}-555-{rng.randint(100, 199):04d}"
            if num not in used_digits:
                used_digits.add(num)
                return num

    ivr: list[IvrNode] = []
    # Services a distractor IVR option may name: not the task's own department when the task
    # is meant to be reached by a transfer or a second number.
    hidden = {target.id} if k.mode != "direct" else set()
    option_pool: list[tuple[str, Route]] = [
        (f"for {_second_person(s.label)}", Route(department=s.department))
        for s in services[1:]
        if s.department not in hidden and s.id != f"{task.id}_priority"
    ]
    dept_options: list[tuple[str, Route]] = [
        (x.menu, Route(department=x.id)) for x in distractor_depts if x.id not in hidden
    ]

    def build_menu(
        node_id: str,
        intro: str,
        correct: tuple[str, Route],
        distractors: list[tuple[str, Route]],
        root: bool,
        back: bool = True,
    ) -> None:
        opts = [correct, *distractors]
        rng.shuffle(opts)
        keyed = [(str(i + 1), phrase, r) for i, (phrase, r) in enumerate(opts[:8])]
        if not root and back and d >= 2:
            keyed.append(("9", "to return to the main menu", Route(node="main_menu")))
        if root and d >= 2:
            keyed.append(("*", "to hear these options again", Route(node=node_id)))
        timeout: Route | None = None
        if root and d >= 3 and dept_options:
            timeout = rng.choice(dept_options)[1]
        elif root and d in (1, 2) and rng.random() < 0.5:
            timeout = Route(department=entry.id)
        elif not root and d >= 4 and dept_options and rng.random() < 0.3:
            timeout = rng.choice(dept_options)[1]
        ivr.append(
            IvrNode(
                id=node_id,
                prompt=_prompt(intro, [(key, phrase) for key, phrase, _ in keyed]),
                options={key: r for key, _, r in keyed},
                timeout=timeout,
            )
        )

    if k.ivr_depth == 0:
        main_route = Route(department=entry.id)
    else:
        main_route = Route(node="main_menu")
        phrases = task.menu[3 - k.ivr_depth :]
        node_ids = ["main_menu", "account_menu", "request_menu"][: k.ivr_depth]
        for level, (node_id, phrase) in enumerate(zip(node_ids, phrases, strict=True)):
            last_level = level == k.ivr_depth - 1
            nxt = Route(department=entry.id) if last_level else Route(node=node_ids[level + 1])
            if level == 0:
                dist = list(dept_options)
                if d >= 3 and len(dist) >= 1:
                    # Turn one department option into a submenu of its own.
                    sub_phrase, sub_route = dist[0]
                    sub_id = f"{sub_route.department}_menu"
                    subs = [o for o in option_pool if o[1] == sub_route][:3]
                    sub_opts = [("to speak with a representative", sub_route), *subs]
                    build_menu(
                        sub_id,
                        _cap(departments[str(sub_route.department)].label) + ".",
                        sub_opts[0],
                        sub_opts[1:],
                        root=False,
                    )
                    dist[0] = (sub_phrase, Route(node=sub_id))
                dist = dist[: max(1, k.options_per_menu)]
                if len(dist) < k.options_per_menu:
                    dist += rng.sample(
                        option_pool, min(len(option_pool), k.options_per_menu - len(dist))
                    )
                intro = f"Thank you for calling {company}."
            else:
                dist = rng.sample(option_pool, min(len(option_pool), k.options_per_menu))
                intro = ""
            build_menu(node_id, intro, (phrase, nxt), dist, root=level == 0)

    numbers: list[PhoneNumber] = [
        PhoneNumber(
            id="customer_service",
            label=f"{company} customer service",
            digits=digits(),
            routes_to=main_route,
        )
    ]
    reachable = {entry.id} | {
        r.department for n in ivr for r in (*n.options.values(), n.timeout) if r and r.department
    }

    other_depth = 0
    if k.mode == "call_other":
        if d >= 4 and rng.random() < 0.5:
            other_depth = 1
            build_menu(
                "direct_menu",
                f"You've reached {company} {target.label}.",
                (task.menu[-1], Route(department=target.id)),
                [
                    (
                        "to speak with a representative about anything else",
                        Route(department=target.id),
                    )
                ],
                root=False,
                back=False,
            )
            direct_route = Route(node="direct_menu")
        else:
            direct_route = Route(department=target.id)
        numbers.append(
            PhoneNumber(
                id=f"{target.id}_line",
                label=f"{company} {target.label}",
                digits=digits(),
                routes_to=direct_route,
                listed=False,
            )
        )
        reachable.add(target.id)

    candidates_for_numbers = [x for x in distractor_depts if x.id not in hidden]
    rng.shuffle(candidates_for_numbers)
    for x in candidates_for_numbers[: k.n_numbers]:
        numbers.append(
            PhoneNumber(
                id=f"{x.id}_line",
                label=f"{company} {x.label}",
                digits=digits(),
                routes_to=Route(department=x.id),
            )
        )
        reachable.add(x.id)
    # Every department gets some number, so a rep that can't transfer can always name one.
    for dept_id in departments:
        if dept_id not in reachable:
            numbers.append(
                PhoneNumber(
                    id=f"{dept_id}_direct",
                    label=f"{company} {departments[dept_id].label} (direct line)",
                    digits=digits(),
                    routes_to=Route(department=dept_id),
                    listed=False,
                )
            )

    # ---- budget of turns ----------------------------------------------------------------------
    asks = sum(1 for f in facts if not f.known_to_assistant and f.id in verify)
    if rule is not None and not next(f for f in facts if f.id == rule.fact).known_to_assistant:
        asks += 1
    turns = asks + 1 + k.ivr_depth + departments[entry.id].hold[1] + 1
    if k.mode == "transfer":
        turns += departments[target.id].hold[1]
    elif k.mode == "call_other":
        turns += 1 + 1 + other_depth + departments[target.id].hold[1] + 1
    turns += len(verify) + (rule is not None) + (fee > 0) + (offer is not None) + 2
    max_turns = min(200, 2 * turns + rng.randint(4, 8))

    # ---- assemble -----------------------------------------------------------------------------
    features = [
        f"ivr_depth_{k.ivr_depth}",
        k.mode,
        *(["eligibility"] if rule else []),
        *(["fee"] if fee else []),
        *(["offer"] if offer else []),
        *(["trap"] if k.trap and task.trap else []),
    ]
    description = (
        f"Generated ({dom.kind}, difficulty {level_name}): {fill(task.title)}. "
        f"IVR depth {k.ivr_depth}; "
        f"{len(verify)} verification item(s), {asks} fact(s) to ask the user for; route: "
        f"{k.mode.replace('_', ' ')}; fee ${fee} (limit ${max_fees}); call budget "
        f"{k.call_budget}."
    )
    phrasing = Phrasing(greeting=list(rng.choice(_GREETINGS))) if rng.random() < 0.5 else Phrasing()
    return PhoneScenario(
        name=f"generated_d{level_name}_s{seed}"
        if seed >= 0
        else f"generated_d{level_name}_sm{-seed}",
        title=f"{company}: {fill(task.title)}",
        description=description,
        company=Company(
            name=company,
            rep_names=rng.sample(_REPS, 4),
            numbers=numbers,
            departments=list(departments.values()),
            ivr=ivr,
        ),
        policies=Policies(
            services=services,
            max_calls_per_number=k.calls_per_number,
            max_verification_failures=k.max_failures,
        ),
        user=User(name=f"{first} {last}", request=" ".join(request), facts=facts),
        records=records,
        goal=Goal(records=goal, max_fees=max_fees),
        constraints=Constraints(call_budget=k.call_budget, max_turns=max_turns, hints=k.hints),
        phrasing=phrasing,
        realtime=_realtime_behaviour(seed, d),
        tags=["generated", dom.kind, f"difficulty_{level_name}", *features],
    )


def _realtime_behaviour(seed: int, d: int) -> Realtime:
    """The company's behaviour in real-time mode, from ``(seed, difficulty)`` on its own random
    stream (the scenario's other content doesn't change): the higher the difficulty, the more
    often reps talk on when interrupted and the less dead air they wait through."""
    r = random.Random(seed * 104729 + d * 31 + 7)
    return Realtime(
        on_interrupt="talk_on" if r.random() < 0.2 * d else "yield",
        backchannel=r.random() < 0.8,
        patience_s=round(6.0 - d + r.random(), 1),
    )
