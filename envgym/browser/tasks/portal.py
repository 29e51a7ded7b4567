"""The company's self-service portal, generated from a phone scenario.

The same :class:`~envgym.phone.models.PhoneScenario` that drives a phone call describes the
company's website: sign in, account overview (the account records), bills, plans and
services (one request form per service of the scenario's policies: discounts, plan changes,
address changes, cancellation), payment card, a support chat, sign out. A request is judged by
the phone family's policy module, :mod:`envgym.phone.policy`, the same functions the phone
compiler lowers to the engine's tables: the checklist facts (``verify``, then the eligibility
fact) must match, the ``eligibility`` rule must pass on the user's true facts, a ``fee`` must be
accepted, an ``offer`` is proposed and its effects apply if accepted, and
``max_verification_failures`` mismatches in one sign-in session end the session (as they end a
call; the next sign-in starts the count from zero). Success is :func:`~envgym.phone.policy.success`
and the oracle follows :func:`~envgym.phone.policy.plan_scenario`.

``(seed, difficulty)``: the seed orders the services and the navigation; difficulty >= 2 asks
for a second fact at sign-in. With ``scenario="generated"`` every episode is a new company from
the phone generator (:func:`envgym.phone.generator.generate_scenario` at the same seed and
difficulty).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from envgym.browser.tasks.base import Judgement, PageView, Request, Response, Task, esc, layout
from envgym.phone import policy
from envgym.phone.models import Fact, PhoneScenario, Service
from envgym.phone.text import normalize_value

NAV = (
    ("/account", "Account overview"),
    ("/bills", "Bills"),
    ("/services", "Plans and services"),
    ("/card", "Payment card"),
    ("/chat", "Support chat"),
    ("/logout", "Sign out"),
)


def _label(text: str) -> str:
    return text[:1].upper() + text[1:]


def _field(name: str) -> str:
    return _label(name.replace("_", " "))


class PortalTask(Task):
    """One episode of the portal of one phone scenario (fresh copy of the account records)."""

    name = "Portal"
    title = "company self-service portal"
    max_steps = 30

    def __init__(self, seed: int, difficulty: int, scenario: PhoneScenario) -> None:
        super().__init__(seed, difficulty)
        sc = self.sc = scenario
        rng = np.random.default_rng(seed)
        self.records: dict[str, str] = dict(sc.records)
        self.fees = 0
        self.failures = 0  # mismatches in this sign-in session (policy.locks_out)
        self.logged_in = False
        self.handled: list[str] = []
        self.chat: list[tuple[str, str]] = []
        self.pending_offer: str | None = None
        self.notice = ""
        self.facts: dict[str, Fact] = {f.id: f for f in sc.user.facts}
        order = rng.permutation(len(sc.policies.services))
        self.services: list[Service] = [sc.policies.services[i] for i in order]
        self.login_facts = self._login_facts(difficulty)
        plan = policy.plan_scenario(sc)
        if plan is None:
            raise ValueError(f"scenario {sc.name!r} has no plan that reaches its goal")
        self.plan = plan
        facts = "; ".join(f"{f.label}: {f.value}" for f in sc.user.facts)
        self.instruction = (
            f"You act for {sc.user.name} on the {sc.company.name} website. {sc.user.request} "
            f"Facts: {facts}. Pay at most ${sc.goal.max_fees} in fees."
        )
        self.start_path = "/login"

    def _login_facts(self, difficulty: int) -> list[Fact]:
        facts = list(self.facts.values())
        first = next((f for f in facts if "account" in f.id), None) or next(
            (f for f in facts if f.known_to_assistant), facts[0]
        )
        out = [first]
        if difficulty >= 2:
            second = next((f for f in facts if f is not first), None)
            if second is not None:
                out.append(second)
        return out

    # ------------------------------------------------------------------ pages
    def _page(self, title: str, body: str) -> Response:
        nav = ""
        if self.logged_in:
            nav = (
                "<nav aria-label=Main>"
                + " | ".join(f'<a href="{p}">{esc(t)}</a>' for p, t in NAV)
                + "</nav>"
            )
        notice = f"<p role=status>{esc(self.notice)}</p>" if self.notice else ""
        self.notice = ""
        return Response(
            layout(
                f"{self.sc.company.name} - {title}",
                f"<header><b>{esc(self.sc.company.name)}</b></header>{nav}"
                f"<main><h1>{esc(title)}</h1>{notice}{body}</main>",
            )
        )

    def _form(
        self, action: str, fields: list[tuple[str, str]], button: str, extra: str = ""
    ) -> str:
        inputs = "".join(
            f'<label>{esc(lbl)} <input name="{esc(name)}" aria-label="{esc(lbl)}"></label>'
            for name, lbl in fields
        )
        return (
            f'<form method=post action="{esc(action)}">{inputs}{extra}'
            f"<button>{esc(button)}</button></form>"
        )

    def handle(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if path in ("/", "/login") or not self.logged_in:
            if req.method == "POST" and path == "/login":
                return self._login(req)
            if path == "/logout":
                self._end_session()
            if self.logged_in:
                return Response.redirect("/account")
            fields = [(f.id, _label(f.label)) for f in self.login_facts]
            return self._page("Sign in", self._form("/login", fields, "Sign in"))
        if path == "/logout":
            self._end_session()
            return Response.redirect("/login")
        if path == "/account":
            rows = "".join(
                f"<tr><th scope=row>{esc(_field(k))}</th><td>{esc(v)}</td></tr>"
                for k, v in self.records.items()
            )
            return self._page(
                "Account overview",
                f"<p>Account holder: {esc(self.sc.user.name)}</p><table>{rows}</table>"
                f"<p>Fees charged this session: ${self.fees}</p>",
            )
        if path == "/bills":
            return self._page("Bills", self._bills())
        if path == "/services":
            return self._page("Plans and services", self._services())
        if path.startswith("/service/"):
            return self._service(req, path)
        if path == "/card":
            return self._card(req)
        if path == "/chat":
            return self._chat(req)
        return Response(layout("Not found", "<h1>Page not found</h1>"), status=404)

    def _login(self, req: Request) -> Response:
        ok = all(policy.stated_correct(self.sc, f.id, req.get(f.id)) for f in self.login_facts)
        if ok:
            # A new contact: the mismatch count starts from zero (policy.locks_out).
            self.logged_in, self.failures = True, 0
            return Response.redirect("/account")
        self.notice = "Those details don't match our records."
        return Response.redirect("/login")

    def _bills(self) -> str:
        price_keys = [k for k in self.records if "price" in k]
        if not price_keys:
            return "<p>No statements available.</p>"
        k = price_keys[0]
        past = self.sc.records[k]
        items = "".join(
            f"<li>Statement {m}: ${esc(past)}</li>" for m in ("September", "October", "November")
        )
        return f"<p>Current monthly charge: ${esc(self.records[k])}</p><ul>{items}</ul>"

    def _services(self) -> str:
        deps = {d.id: d.label for d in self.sc.company.departments}
        out = []
        for dep_id in dict.fromkeys(s.department for s in self.services):
            links = "".join(
                f'<li><a href="/service/{esc(s.id)}">Request {esc(s.label)}</a></li>'
                for s in self.services
                if s.department == dep_id
            )
            out.append(f"<h2>{esc(_label(deps.get(dep_id, dep_id)))}</h2><ul>{links}</ul>")
        return "".join(out)

    def _end_session(self) -> None:
        """Sign out; an offer still open is dropped (as hanging up ends a request)."""
        self.logged_in = False
        self.pending_offer = None

    def _service_fields(self, svc: Service) -> list[tuple[str, str]]:
        ids = policy.checklist(svc)
        return [(i, _label(self.facts[i].label)) for i in ids if i in self.facts]

    def _service(self, req: Request, path: str) -> Response:
        parts = path.split("/")
        svc = next((s for s in self.services if s.id == parts[2]), None)
        if svc is None:
            return Response(layout("Not found", "<h1>Page not found</h1>"), status=404)
        sub = parts[3] if len(parts) > 3 else ""
        if sub == "offer" and self.pending_offer == svc.id and svc.offer is not None:
            if req.method == "POST":
                self.pending_offer = None
                self._apply(svc, policy.outcome(svc, accept_offer=req.get("answer") == "yes"))
                return Response.redirect("/account")
            return self._page(
                _label(svc.label),
                f'<p>{esc(svc.offer.text)}</p><form method=post action="/service/{svc.id}/offer">'
                "<button name=answer value=yes>Yes, accept the offer</button>"
                "<button name=answer value=no>No, continue with my request</button></form>",
            )
        if req.method == "POST":
            return self._request(req, svc)
        fee = (
            f"<label><input type=checkbox name=accept_fee value=yes> I accept the ${svc.fee} fee"
            "</label>"
            if svc.fee
            else ""
        )
        expl = f"<p>{esc(svc.explanation)}</p>" if svc.explanation else ""
        form = self._form(f"/service/{svc.id}", self._service_fields(svc), "Submit request", fee)
        return self._page(_label(svc.label), expl + form)

    def _request(self, req: Request, svc: Service) -> Response:
        """A submitted request form, judged by :func:`envgym.phone.policy.review`."""
        here = f"/service/{svc.id}"
        stated = {fid: req.get(fid) for fid in policy.checklist(svc)}
        fee_agreed = req.get("accept_fee") == "yes"
        rv = policy.review(self.sc, svc, stated, self.failures, fee_agreed)
        V = policy.Verdict
        if rv.verdict in (V.MISMATCH, V.LOCKED_OUT):
            self.failures += 1
            if rv.verdict is V.LOCKED_OUT:
                self._end_session()
                self.notice = "Too many details didn't match; for your security you're signed out."
                return Response.redirect("/login")
            f = self.facts.get(rv.fact or "")
            self.notice = f"The {f.label if f else rv.fact} doesn't match our records."
        elif rv.verdict is V.INELIGIBLE:
            refusal = svc.eligibility.refusal if svc.eligibility else None
            self.notice = refusal or f"Sorry, you're not eligible for {svc.label}."
        elif rv.verdict is V.FEE_DECLINED:
            self.notice = f"This request has a ${policy.fee(svc)} fee; tick the box to accept it."
        elif rv.verdict is V.OFFER:
            self.pending_offer = svc.id
            return Response.redirect(f"{here}/offer")
        else:
            self._apply(svc, policy.outcome(svc, accept_offer=False))
            return Response.redirect("/account")
        return Response.redirect(here)

    def _apply(self, svc: Service, out: policy.Outcome) -> None:
        """A request that went through: its outcome's records and fee."""
        self.records.update(out.effects)
        self.fees += out.fee
        self.notice = svc.offer.accepted_reply if out.via_offer and svc.offer else svc.done
        self.handled.append(svc.id)

    def _card(self, req: Request) -> Response:
        if req.method == "POST":
            self.notice = "Thanks, your card details were updated."
            return Response.redirect("/card")
        card = self.facts.get("card_last4")
        ending = card.value if card else "****"
        return self._page(
            "Payment card",
            f"<p>Card on file ending in {esc(ending)}</p>"
            + self._form("/card", [("card_number", "New card number")], "Update card"),
        )

    def _chat(self, req: Request) -> Response:
        if req.method == "POST":
            msg = req.get("message").strip()[:300]
            if msg:
                words = set(normalize_value(w) for w in msg.split())
                hit = next(
                    (
                        s
                        for s in self.services
                        if words & {normalize_value(w) for w in s.label.split() if len(w) > 3}
                    ),
                    None,
                )
                if hit is not None:
                    reply = (
                        hit.explanation or f"You can request {hit.label} under Plans and services."
                    )
                else:
                    reply = "I can help with: " + "; ".join(s.label for s in self.services) + "."
                self.chat.append((msg, reply))
            return Response.redirect("/chat")
        log = "".join(f"<li>You: {esc(m)}</li><li>Agent: {esc(r)}</li>" for m, r in self.chat[-5:])
        return self._page(
            "Support chat",
            f"<ul aria-label=Conversation>{log}</ul>"
            + self._form("/chat", [("message", "Message")], "Send"),
        )

    # ------------------------------------------------------------------ judge and oracle
    def judge(self) -> Judgement:
        ok = policy.success(self.sc, self.records, self.fees)
        return Judgement(ok, ok)

    def oracle(self, view: PageView) -> str:
        if not self.logged_in:
            return self._fill_and_submit(view, self.login_facts, "Sign in")
        todo = next((s for s in self.plan.services if s not in self.handled), None)
        if todo is None:
            return "noop"
        svc = next(s for s in self.services if s.id == todo)
        if view.path == f"/service/{svc.id}/offer":
            yes = self.plan.accept_offer.get(svc.id, False)
            label = "Yes, accept the offer" if yes else "No, continue with my request"
            return _click(view, "button", label)
        if view.path == f"/service/{svc.id}":
            facts = [self.facts[i] for i, _ in self._service_fields(svc)]
            if svc.fee:
                box = view.find("checkbox", f"I accept the ${svc.fee} fee")
                if box is not None and "checked" not in box.attrs:
                    action = self._fill_only(view, facts)
                    return action or f"check {box.ref}"
            return self._fill_and_submit(view, facts, "Submit request")
        if view.path == "/services":
            return _click(view, "link", f"Request {svc.label}")
        return _click(view, "link", "Plans and services")

    def _fill_only(self, view: PageView, facts: list[Fact]) -> str | None:
        for f in facts:
            box = view.find("textbox", _label(f.label))
            if box is not None and box.value != f.value:
                return f"fill {box.ref} {f.value}"
        return None

    def _fill_and_submit(self, view: PageView, facts: list[Fact], button: str) -> str:
        return self._fill_only(view, facts) or _click(view, "button", button)


def _click(view: PageView, role: str, name: str) -> str:
    ref = view.ref(role, name)
    return f"click {ref}" if ref else "noop"


def portal_factory(
    scenario: str | PhoneScenario = "isp_bill_discount",
) -> Callable[[int, int], Task]:
    """``(seed, difficulty) -> PortalTask`` for a shipped phone scenario (name, YAML path or
    model), or ``"generated"`` for a new generated company every episode."""
    if isinstance(scenario, str) and scenario == "generated":
        from envgym.phone.generator import generate_scenario

        def make_generated(seed: int, difficulty: int) -> Task:
            return PortalTask(seed, difficulty, generate_scenario(seed, difficulty))

        return make_generated
    from envgym.phone.scenarios import load_scenario

    sc = load_scenario(scenario)
    if policy.plan_scenario(sc) is None:
        raise ValueError(f"phone scenario {sc.name!r} has no plan that reaches its goal")

    def make(seed: int, difficulty: int) -> Task:
        return PortalTask(seed, difficulty, sc)

    return make
