"""Learning across calls: sequences of episodes over one company.

A :class:`CompanySequence` is built on the generator: one generated company
(:func:`~envgym.phone.generator.generate_scenario`) whose **hidden requirements persist** across
the episodes of the sequence, while the **request varies**:

- one company-wide verification policy: every service verifies the same facts (the generated
  task's ``verify`` list, e.g. account number then the card's last four digits, with a second
  item added if it has one). All of them but the first are facts only the user knows;
- the same departments, IVR, numbers, eligibility rules, fees and offers in every episode;
- episode j asks for one of the company's services (the generated task or one of its other
  services), drawn from the sequence's seed so consecutive requests differ;
- the user's verification facts get fresh digits every episode (another customer of the same
  company), so remembering *values* doesn't help; remembering *what the company asks for* does.

The protocol's constraints (defaults) make that lesson matter: the user can be reached only
between calls (``constraints.user_reachable="off_call"``: they brief the assistant and leave),
and the company takes one call per number per day (``policies.max_calls_per_number=1``). A caller
that learns mid-call that the card's last four digits are needed can't ask for them in time; one
that wrote it down last time asks before dialling.

:func:`run_sequence` plays the episodes in order with one agent object (its memory carries
over) and reports success per episode, **episodes-to-first-success** and **success over the
sequence**; :func:`evaluate_continual` averages them over several companies.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from envgym.phone.models import Fact, PhoneScenario, Service

CONTINUAL_DEFAULTS = {"user_reachable": "off_call", "calls_per_number": 1}


def _fresh_digits(value: str, rng: random.Random) -> str:
    """The same value shape with new digits (another customer's number)."""
    return re.sub(r"\d", lambda _: str(rng.randrange(10)), value)


@dataclass(frozen=True)
class _Company:
    """What persists across a sequence: the generated company, its task and the verification
    policy every service follows."""

    base: PhoneScenario
    task: Service
    verify: list[str]
    """The fact ids every service verifies."""
    user_only: frozenset[str]
    """Facts only the user knows: every item after the account id (or the id itself)."""
    elig_facts: frozenset[str]

    @classmethod
    def of(cls, base: PhoneScenario) -> _Company:
        task = base.policies.services[0]
        verify = list(task.verify)
        if len(verify) < 2:
            # A company-wide second item, so there is something only the user knows.
            spare = [f.id for f in base.user.facts if f.id not in verify and f.sensitive]
            verify += spare[:1]
        elig = frozenset(s.eligibility.fact for s in base.policies.services if s.eligibility)
        return cls(base, task, verify, frozenset(verify[1:] or verify), elig)

    def fresh_facts(self, rng: random.Random) -> list[Fact]:
        """The user's facts for one episode: fresh digits (another customer), the verification
        items unknown to the assistant."""
        facts = []
        for f in self.base.user.facts:
            upd: dict[str, Any] = {}
            if f.id not in self.elig_facts:
                upd["value"] = _fresh_digits(f.value, rng)
            if f.id in self.user_only:
                upd["known_to_assistant"] = False
            facts.append(f.model_copy(update=upd))
        return facts


@dataclass
class CompanySequence:
    """A sequence of ``length`` scenarios over one generated company.

    Args:
        company_seed: generator seed of the company (``generate_scenario(company_seed,
            difficulty)``).
        length: number of episodes.
        difficulty: generator difficulty, 0 to 4.
        seed: draws the request of each episode and the users' fresh digits.
        user_reachable: ``"off_call"`` (default: the user answers only between calls) or
            ``"always"``.
        calls_per_number: the company's ``max_calls_per_number`` (default 1).

    Attributes:
        scenarios: the episodes' scenarios, in order (names ``company_d{d}_s{seed}_e{j}``).
        company: the company's name.
        requirements: the fact ids every service verifies (privileged: for tests and docs, not
            for agents).
        services: the service id each episode asks for.
    """

    company_seed: int
    length: int = 8
    difficulty: int = 2
    seed: int = 0
    user_reachable: str = "off_call"
    calls_per_number: int = 1
    scenarios: list[PhoneScenario] = field(init=False)
    company: str = field(init=False)
    requirements: list[str] = field(init=False)
    services: list[str] = field(init=False)

    def __post_init__(self) -> None:
        from envgym.phone.generator import generate_scenario

        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")
        if self.user_reachable not in ("always", "off_call"):
            raise ValueError(
                f"user_reachable must be 'always' or 'off_call', got {self.user_reachable!r}"
            )
        c = _Company.of(generate_scenario(self.company_seed, self.difficulty))
        self.company = c.base.company.name
        self.requirements = c.verify
        rng = random.Random(f"continual/{self.company_seed}/{self.difficulty}/{self.seed}")
        self.services = self._request_order(c, rng)
        self.scenarios = [self._episode(c, rng, sid, j) for j, sid in enumerate(self.services)]

    def _request_order(self, c: _Company, rng: random.Random) -> list[str]:
        """The service each episode asks for: the requests this company can serve (services
        whose grant meets a goal that the oracle reaches in every seeded episode, look-alike
        "priority" twins excluded), shuffled round by round with no request twice in a row."""
        from envgym.phone.compiler import compile_scenarios
        from envgym.phone.engine import oracle_success_rate

        services = c.base.policies.services
        candidates = [s.id for s in services if not s.id.endswith("_priority")]
        trial = [self._episode(c, rng, sid, -1 - i) for i, sid in enumerate(candidates)]
        trial = [sc.model_copy(update={"name": f"probe_{i}"}) for i, sc in enumerate(trial)]
        rates = oracle_success_rate(compile_scenarios(trial), seeds=4)
        ok = [sid for sid, r in zip(candidates, rates, strict=True) if r == 1.0] or [c.task.id]
        order: list[str] = []
        while len(order) < self.length:
            batch = ok[:]
            rng.shuffle(batch)
            if order and len(batch) > 1 and batch[0] == order[-1]:
                batch.append(batch.pop(0))
            order.extend(batch)
        return order[: self.length]

    def _episode(self, c: _Company, rng: random.Random, service_id: str, j: int) -> PhoneScenario:
        """Episode ``j``: the company asked for ``service_id`` by a user with fresh digits."""
        base = c.base
        svc = next(s for s in base.policies.services if s.id == service_id)
        services = [s.model_copy(update={"verify": list(c.verify)}) for s in base.policies.services]
        if svc.id == c.task.id:
            request, goal = base.user.request, base.goal
        else:
            fees = (
                f" I'm okay paying up to ${svc.fee} in fees, but no more."
                if svc.fee
                else " I don't want to pay any fees."
            )
            request = f"Please call {self.company} and ask for {svc.label}.{fees}"
            goal = base.goal.model_copy(update={"records": dict(svc.effects), "max_fees": svc.fee})
        facts = c.fresh_facts(rng)
        return base.model_copy(
            update={
                "name": f"company_d{self.difficulty}_s{self.company_seed}_e{j}",
                "title": f"{self.company}: {svc.label}",
                "policies": base.policies.model_copy(
                    update={"services": services, "max_calls_per_number": self.calls_per_number}
                ),
                "user": base.user.model_copy(update={"request": request, "facts": facts}),
                "goal": goal,
                "constraints": base.constraints.model_copy(
                    update={"user_reachable": self.user_reachable}
                ),
                "tags": [*base.tags, "continual"],
            }
        )

    def make_env(self, **kwargs: Any) -> Any:
        """The text-face env over this sequence's scenarios (pin episode j with
        ``reset(options={"scenario_index": j})``)."""
        from envgym.phone.faces import PhoneEnv

        return PhoneEnv(scenario=self.scenarios, obs_mode="text", **kwargs)


def run_sequence(agent: Any, sequence: CompanySequence, seed: int = 0) -> dict[str, Any]:
    """Play the sequence's episodes in order with one agent (its memory carries over).

    Returns:
        ``success`` and ``return`` per episode, ``episodes_to_first_success`` (1-based; ``None``
        if no episode succeeded), ``success_rate`` over the sequence and ``success_after_first``
        (the rate over episodes 2..n, what the first call taught).
    """
    from envgym.phone.evaluate import run_episode, trial_seed

    env = sequence.make_env()
    try:
        runs = [
            run_episode(env, agent, trial_seed(seed, sequence.company_seed, j), j)
            for j in range(sequence.length)
        ]
    finally:
        env.close()
    wins = [r["success"] for r in runs]
    first = next((j + 1 for j, w in enumerate(wins) if w), None)
    return {
        "company_seed": sequence.company_seed,
        "company": sequence.company,
        "services": sequence.services,
        "success": wins,
        "return": [r["return"] for r in runs],
        "episodes_to_first_success": first,
        "success_rate": sum(wins) / len(wins),
        "success_after_first": sum(wins[1:]) / max(1, len(wins) - 1),
    }


def evaluate_continual(
    policy: str | Any,
    *,
    companies: int = 4,
    length: int = 8,
    difficulty: int = 2,
    seed: int = 0,
    **sequence_kwargs: Any,
) -> dict[str, Any]:
    """Run a policy over ``companies`` sequences (company seeds ``seed .. seed+companies-1``).

    Args:
        policy: a :func:`~envgym.phone.agents.make_agent` spec, or a function ``make(seed) ->
            agent``; one agent per company, reused across that company's episodes.
        companies, length, difficulty, seed: the sequences (see :class:`CompanySequence`).
        sequence_kwargs: ``user_reachable=``, ``calls_per_number=``.

    Returns:
        A JSON-ready report: one row per company (:func:`run_sequence`) and the means of
        ``success_rate``, ``success_after_first`` and ``episodes_to_first_success`` (a
        sequence without a success counts as ``length + 1``).
    """
    from envgym.phone.agents import make_agent

    make = policy if callable(policy) else (lambda s: make_agent(policy, s))
    rows = []
    for c in range(companies):
        seq = CompanySequence(seed + c, length, difficulty, seed, **sequence_kwargs)
        rows.append(run_sequence(make(seed + c), seq, seed))
    n = len(rows)
    first = [r["episodes_to_first_success"] or length + 1 for r in rows]
    return {
        "policy": policy if isinstance(policy, str) else getattr(policy, "__name__", "custom"),
        "companies": companies,
        "length": length,
        "difficulty": difficulty,
        "seed": seed,
        "sequence_kwargs": {**CONTINUAL_DEFAULTS, **sequence_kwargs},
        "rows": rows,
        "overall": {
            "success_rate": sum(r["success_rate"] for r in rows) / n,
            "success_after_first": sum(r["success_after_first"] for r in rows) / n,
            "mean_episodes_to_first_success": sum(first) / n,
        },
    }
