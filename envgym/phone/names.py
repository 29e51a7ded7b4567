"""The phone family's codes and names, declared once.

Each enumeration below is the one home of a set of integer codes (what the engine stores in its
tensors) and their names (what ``info`` and the docs show): the name tuples
(``PHASE_NAMES``, ``ACTION_ERRORS``, ``REP_MOVES``, ...) and the module-level integer constants
(``OFF``, ``A_DIAL``, ``R_GRANT``, ...) are derived from them, so the two cannot drift apart.
The reward terms of every party are declared here too. Import them from here (the compiler no
longer re-exports them).
"""

from __future__ import annotations

from enum import IntEnum


class Phase(IntEnum):
    """Where a world's call stands."""

    OFF_CALL = 0
    IVR_MENU = 1
    ON_HOLD = 2
    WITH_REP = 3


class ActionKind(IntEnum):
    """The assistant's action types (the catalogue maps each action id to a type and an
    argument); ``GARBLED`` is text that could not be parsed, ``IDLE`` (internal) a step where
    the assistant doesn't hold the floor."""

    WAIT = 0
    HANGUP = 1
    YES = 2
    NO = 3
    REPORT = 4
    DIAL = 5
    PRESS = 6
    REQUEST = 7
    ASK_ABOUT = 8
    PROVIDE = 9
    ASK_USER = 10
    GARBLED = 11
    IDLE = 12


class Floor(IntEnum):
    """Who speaks next in a world (three-party mode; the single-agent env always starts a step
    with the assistant, and the scripted rep and user answer within the same step)."""

    ASSISTANT = 0
    REP = 1
    USER = 2


class Stimulus(IntEnum):
    """What the rep is answering (the stimulus of its turn)."""

    NONE = 0
    PICKUP = 1
    CONTINUE = 2
    UNCLEAR = 3
    WAITING = 4
    REQUEST = 5
    ASK_ABOUT = 6
    PROVIDE = 7


class RepMove(IntEnum):
    """The rep's action types (its catalogue maps ids to a type and, for ``ask:f``, a fact)."""

    LISTEN = 0
    GREET = 1
    VERIFY = 2
    REJECT = 3
    GRANT = 4
    REFUSE = 5
    TRANSFER = 6
    REFER = 7
    HOLD = 8
    EXPLAIN = 9
    ASK_FEE = 10
    OFFER = 11
    CANNOT_HELP = 12
    NOT_UNDERSTOOD = 13
    STILL_THERE = 14
    UNREQUESTED = 15
    ASK = 16


class RepError(IntEnum):
    """Why a rep move could not be carried out (``info`` of the rep; 0: it was)."""

    OK = 0
    NO_REQUEST = 1
    NOTHING_STATED = 2
    CANNOT_TRANSFER = 3
    NO_OFFER = 4
    NO_FACT = 5


class UserMove(IntEnum):
    """The user's actions when asked for a fact."""

    ANSWER = 0
    DONT_KNOW = 1
    REFUSE = 2


class Slot(IntEnum):
    """A request's checklist slots after its verification items."""

    ELIG = 0
    FEE = 1
    OFFER = 2
    GRANT = 3


class ActionError(IntEnum):
    """Why an assistant action could not be carried out (``info["action_error"]``; 0: it was)."""

    OK = 0
    NOT_ON_CALL = 1
    ALREADY_ON_CALL = 2
    UNKNOWN_NUMBER = 3
    NOT_UNDERSTOOD = 4
    NO_MENU_TO_PRESS = 5
    IVR_NEEDS_KEYS = 6
    NOBODY_LISTENING = 7
    NOTHING_ASKED = 8


def _names(enum: type[IntEnum]) -> tuple[str, ...]:
    """The lower-case names of an enumeration's members, in code order (codes are 0..n-1)."""
    members = sorted(enum, key=int)
    assert [int(m) for m in members] == list(range(len(members))), enum
    return tuple(m.name.lower() for m in members)


PHASE_NAMES = _names(Phase)
PARTIES = _names(Floor)
STIMULUS_NAMES = _names(Stimulus)
REP_MOVES = _names(RepMove)[:-1]
"""The rep's fixed moves (``ask`` takes a fact: the catalogue adds ``ask:f`` per fact)."""
REP_ACTION_ERRORS = ("", *_names(RepError)[1:])
USER_ACTIONS = _names(UserMove)
ACTION_ERRORS = ("", *_names(ActionError)[1:])

OFF, IVR, HOLD, REP = (int(p) for p in Phase)
(
    A_WAIT,
    A_HANGUP,
    A_YES,
    A_NO,
    A_REPORT,
    A_DIAL,
    A_PRESS,
    A_REQUEST,
    A_ASK_ABOUT,
    A_PROVIDE,
    A_ASK_USER,
    A_GARBLED,
    A_IDLE,
) = (int(k) for k in ActionKind)
FLOOR_ASSISTANT, FLOOR_REP, FLOOR_USER = (int(f) for f in Floor)
(
    STIM_NONE,
    STIM_PICKUP,
    STIM_CONTINUE,
    STIM_UNCLEAR,
    STIM_WAIT,
    STIM_REQUEST,
    STIM_ASK_ABOUT,
    STIM_PROVIDE,
) = (int(s) for s in Stimulus)
(
    R_LISTEN,
    R_GREET,
    R_VERIFY,
    R_REJECT,
    R_GRANT,
    R_REFUSE,
    R_TRANSFER,
    R_REFER,
    R_HOLD,
    R_EXPLAIN,
    R_ASK_FEE,
    R_OFFER,
    R_CANNOT_HELP,
    R_NOT_UNDERSTOOD,
    R_STILL_THERE,
    R_UNREQUESTED,
    R_ASK,
) = (int(m) for m in RepMove)
RE_OK, RE_NO_REQUEST, RE_NOTHING_STATED, RE_CANNOT_TRANSFER, RE_NO_OFFER, RE_NO_FACT = (
    int(e) for e in RepError
)
U_ANSWER, U_DONT_KNOW, U_REFUSE = (int(m) for m in UserMove)
SLOT_ELIG, SLOT_FEE, SLOT_OFFER, SLOT_GRANT = (int(s) for s in Slot)
(
    E_OK,
    E_NOT_ON_CALL,
    E_ON_CALL,
    E_UNKNOWN_NUMBER,
    E_GARBLED,
    E_NO_MENU,
    E_IVR_KEYS,
    E_HOLD,
    E_NOTHING_ASKED,
) = (int(e) for e in ActionError)

# ------------------------------------------------------------------ reward terms
REWARD_TERMS = ("goal", "turn_cost", "privacy_violation", "over_call_budget", "invalid_action")
"""The assistant's reward terms (weights per scenario: ``PhoneTables.w``, in this order)."""
SUBGOALS = ("right_department", "right_service", "verification", "user_fact", "goal_records")
"""The sub-goals of a call, tracked in every world; ``reward_mode="shaped"`` pays each once."""
SHAPED_TERMS = tuple(f"subgoal_{g}" for g in SUBGOALS)
"""Reward terms of the sub-goals (0 unless ``reward_mode="shaped"``)."""
ALL_REWARD_TERMS = REWARD_TERMS + SHAPED_TERMS
"""Every reward term the single-agent env reports, in every reward mode."""
SUBGOAL_SHARE = 0.1
"""Each sub-goal group pays at most this share of the goal weight (five groups: half of it)."""
REWARD_MODES = ("sparse", "costs", "shaped")
REP_REWARD_TERMS = (
    "resolved",
    "forbidden_grant",
    "false_verification",
    "wrongful_refusal",
    "invalid_action",
    "turn_cost",
)
"""The rep's reward terms (three-party mode)."""
USER_REWARD_TERMS = ("goal", "turn_cost")
"""The user's reward terms (three-party mode)."""

MSG_SLOTS = 4
"""Messages a world can hear in one step (more are dropped)."""
