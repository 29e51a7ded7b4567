"""A discrete, numeric face for the browser vector env, for learners that can't emit strings.

The browser env takes command strings (``click e12``, ``fill e5 Jane``) and observes text.
Stable-Baselines3 and most RL code want a ``Discrete`` action and a numeric ``Box``
observation. :class:`BrowserSlotActions` gives them one:

- **action** ``Discrete(max_slots)``: slot ``k`` acts on the ``k``-th *interactive* element of
  the current accessibility tree (tree order), with the verb that fits the element (see
  :func:`slot_command`);
- **observation** ``Box(0, 1, (max_slots, NUM_FEATURES))``: one row of features per slot, built
  only from what the agent sees (the instruction and the tree, plus whether the last action
  failed), never from the task's hidden records or its oracle (see :data:`FEATURES`).

Rewards, ``terminated``/``truncated``, ``info["next_obs_target"]`` (the raw next observation's
tokens), ``success``, ``reward_terms`` and ``action_error`` pass through untouched, so a world
model can still be trained on the full text targets. Only the observation changes:
``info["final_obs"]`` holds the *features* of the ended worlds' true last page (SAME_STEP
auto-reset is kept), and ``info["command"]`` the command each world was sent.

Importing this module needs neither Playwright nor Stable-Baselines3.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorWrapper
from gymnasium.vector.utils import batch_space

from envgym.browser.tasks.base import Node, parse_tree
from envgym.core import keys

ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "button": ("button",),
    "link": ("link",),
    "tab": ("tab",),
    "toggle": ("checkbox", "radio", "switch", "menuitemcheckbox", "menuitemradio"),
    "text": ("textbox", "searchbox", "spinbutton"),
    "choice": ("combobox", "listbox"),
    "other": ("menuitem", "slider", "treeitem", "gridcell"),
}
"""Interactive roles, grouped as the features see them. Nodes of other roles (``generic``,
``paragraph``, ``option``, ...) are not slots: options are chosen through their list's
``select``."""

INTERACTIVE_ROLES: dict[str, str] = {r: g for g, roles in ROLE_GROUPS.items() for r in roles}

FEATURES: tuple[str, ...] = (
    "present",  # 1 if the slot holds an element
    *(f"role_{g}" for g in ROLE_GROUPS),  # one-hot of the role group
    "on",  # checked / selected / pressed
    "focused",  # the element has focus ([active])
    "name_quoted",  # its name is one of the instruction's quoted strings (case-insensitive)
    "name_overlap",  # share of the words of its name that occur in the instruction
    "has_value",  # a text field holding text
    "value_matches",  # a field / list already holding what its verb would put there
    "last_action_failed",  # the page's error line is non-empty (same in every slot)
)
"""Names of the feature columns of the observation, in order."""

NUM_FEATURES = len(FEATURES)
_COL = {name: i for i, name in enumerate(FEATURES)}

MISSING_REF = "e0"
"""The ref an out-of-range slot's command names. Refs are numbered from ``e1``, so ``e0`` never
names an element: the env answers ``no element e0 in the current tree`` (``action_error`` 2)
and charges its ``invalid_action`` term, as for any agent's bad ref."""

_QUOTED = re.compile(r'"([^"]*)"')
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def interactive_nodes(tree: str) -> list[Node]:
    """The tree's interactive elements (a ref and a role of :data:`INTERACTIVE_ROLES`), in
    tree order: slot ``k`` is element ``k`` of this list."""
    return [n for n in parse_tree(tree) if n.ref and n.role in INTERACTIVE_ROLES]


def _options(nodes: list[Node], box: Node) -> list[Node]:
    """The ``option`` children of a combobox/listbox node."""
    i = nodes.index(box)
    out = []
    for n in nodes[i + 1 :]:
        if n.depth <= box.depth:
            break
        if n.role == "option":
            out.append(n)
    return out


def fill_text(instruction: str, name: str, names_on_page: set[str]) -> str:
    """What ``fill`` types into the field called ``name``: the quoted value after ``name:`` in
    the instruction (``Email: "a@b.org"``), else the first quoted string of the instruction that
    names nothing on the page (``Type "Apple12" into the "City" field``), else ``""``."""
    m = re.search(re.escape(name) + r'\s*:\s*"([^"]*)"', instruction, flags=re.IGNORECASE)
    if name and m:
        return m.group(1)
    for q in _QUOTED.findall(instruction):
        if q.lower() not in names_on_page:
            return q
    return ""


def choose_option(instruction: str, options: list[Node]) -> tuple[str, str]:
    """``(option to select, option selected now)`` of a list: the first option whose label is
    quoted in the instruction, else whose words occur in it, else the first option."""
    quoted = {q.lower() for q in _QUOTED.findall(instruction)}
    words = _words(instruction)
    selected = next((o.name for o in options if "selected" in o.attrs), "")
    for o in options:
        if o.name.lower() in quoted:
            return o.name, selected
    for o in options:
        if o.name and _words(o.name) <= words:
            return o.name, selected
    return (options[0].name if options else ""), selected


def slot_command(node: Node, instruction: str, nodes: list[Node]) -> Any:
    """The command a slot sends for ``node`` (``nodes``: the whole parsed tree):

    - toggles (checkbox, radio, switch): ``uncheck`` if ticked, else ``check``;
    - text fields: ``fill`` with :func:`fill_text`;
    - lists (combobox, listbox): ``select`` the option :func:`choose_option` picks;
    - everything else (buttons, links, tabs, ...): ``click``.

    The verb comes from the element and the instruction only, so the agent's choice is *which*
    element to act on. A fill whose text is empty or starts or ends with spaces is sent as a
    structured dict (a command string would lose them).
    """
    group = INTERACTIVE_ROLES[node.role]
    if group == "toggle":
        return f"{'uncheck' if 'checked' in node.attrs else 'check'} {node.ref}"
    if group == "text":
        text = fill_text(instruction, node.name, {n.name.lower() for n in nodes if n.name})
        if text and text == text.strip():
            return f"fill {node.ref} {text}"
        return {"op": "fill", "ref": node.ref, "text": text}
    if group == "choice":
        option, _ = choose_option(instruction, _options(nodes, node))
        if option:
            return f"select {node.ref} {option}"
    return f"click {node.ref}"


def page_features(
    instruction: str, tree: str, error: str, max_slots: int
) -> tuple[np.ndarray, list[Any]]:
    """The ``[max_slots, NUM_FEATURES]`` features of one page and the command of each slot
    that holds an element (see :data:`FEATURES`)."""
    nodes = parse_tree(tree)
    slots = [n for n in nodes if n.ref and n.role in INTERACTIVE_ROLES][:max_slots]
    feats = np.zeros((max_slots, NUM_FEATURES), dtype=np.float32)
    quoted = {q.lower() for q in _QUOTED.findall(instruction)}
    words = _words(instruction)
    names_on_page = {n.name.lower() for n in nodes if n.name}
    commands: list[Any] = []
    for k, n in enumerate(slots):
        row = feats[k]
        group = INTERACTIVE_ROLES[n.role]
        row[_COL["present"]] = 1.0
        row[_COL[f"role_{group}"]] = 1.0
        row[_COL["on"]] = float(bool({"checked", "selected", "pressed"} & n.attrs))
        row[_COL["focused"]] = float("active" in n.attrs)
        row[_COL["name_quoted"]] = float(bool(n.name) and n.name.lower() in quoted)
        name_words = _words(n.name)
        if name_words:
            row[_COL["name_overlap"]] = len(name_words & words) / len(name_words)
        if group == "text":
            row[_COL["has_value"]] = float(bool(n.value))
            want = fill_text(instruction, n.name, names_on_page)
            row[_COL["value_matches"]] = float(bool(want) and n.value == want)
        elif group == "choice":
            want, selected = choose_option(instruction, _options(nodes, n))
            row[_COL["value_matches"]] = float(bool(want) and selected == want)
        commands.append(slot_command(n, instruction, nodes))
    feats[:, _COL["last_action_failed"]] = float(bool(error))
    return feats, commands


class BrowserSlotActions(VectorWrapper):
    """A browser vector env with a ``Discrete`` action and a numeric ``Box`` observation.

    ## Action
    ``Discrete(max_slots)`` per world (batched: ``MultiDiscrete``; NumPy arrays, torch tensors
    or lists of ints). Slot ``k`` acts on the ``k``-th interactive element of the world's
    current tree (:func:`interactive_nodes`) with :func:`slot_command`'s verb. A slot past the
    page's last element (an *out-of-range slot*) sends ``click e0``, which the env refuses
    through its own error path: ``action_error`` 2 and the ``invalid_action`` term (-0.05);
    the episode goes on. A page with more than ``max_slots`` elements keeps only the first
    ``max_slots``. Actions outside ``0..max_slots-1`` raise ``ValueError``.

    ## Observation
    float32 ``[max_slots, NUM_FEATURES]`` per world (a torch tensor on the env's device), in
    ``[0, 1]``; the columns are :data:`FEATURES`: whether the slot holds an element, its role
    group (one-hot), whether it is ticked/selected and focused, whether its name is quoted in
    the instruction and how many of its words the instruction contains, whether a field holds
    text and already holds what the slot's verb would put there, and whether the last action
    failed. Everything comes from the instruction, the tree and the error line the agent sees.

    ## Unchanged
    Rewards, flags, ``next_obs_target`` (tokens of the raw next page), ``reward_terms``,
    ``success``, ``action_error``, ``episode``. ``info["final_obs"]`` holds the features of
    the ended worlds' true last page and ``info["command"]`` the command sent to each world.
    The raw observation the current features come from is :attr:`raw_obs`.

    Args:
        env: a browser vector env (``gym.make_vec("envgym/Browser-<Task>-v0", ...,
            vectorization_mode="vector_entry_point")``).
        max_slots: number of slots ``K``.

    Example:
        >>> envs = BrowserSlotActions(gym.make_vec("envgym/Browser-ClickButton-v0", num_envs=4,
        ...     vectorization_mode="vector_entry_point"), max_slots=16)
        >>> obs, _ = envs.reset(seed=0)  # [4, 16, NUM_FEATURES]
        >>> obs, rew, term, trunc, info = envs.step(np.zeros(4, dtype=np.int64))  # slot 0
    """

    def __init__(self, env: Any, max_slots: int = 16) -> None:
        super().__init__(env)
        if max_slots < 1:
            raise ValueError(f"max_slots must be >= 1, got {max_slots}")
        self.max_slots = int(max_slots)
        n = self.num_envs
        self.single_observation_space = spaces.Box(
            0.0, 1.0, (self.max_slots, NUM_FEATURES), np.float32
        )
        self.observation_space = batch_space(self.single_observation_space, n)
        self.single_action_space = spaces.Discrete(self.max_slots)
        self.action_space = batch_space(self.single_action_space, n)
        self.raw_obs: dict[str, Any] | None = None
        self._commands: list[list[Any]] = [[] for _ in range(n)]

    @property
    def device(self) -> torch.device:
        """The wrapped env's device (every tensor it returns lives there)."""
        return torch.device(self.env.unwrapped.device)

    @property
    def single_target_space(self) -> spaces.Space:
        """The wrapped env's target space (targets pass through unchanged)."""
        return self.env.unwrapped.single_target_space

    @property
    def target_space(self) -> spaces.Space:
        """The wrapped env's batched target space."""
        return self.env.unwrapped.target_space

    # ------------------------------------------------------------------ conversion
    def _features(self, raw: dict[str, Any]) -> tuple[torch.Tensor, list[list[Any]]]:
        feats, commands = [], []
        for i in range(self.num_envs):
            f, c = page_features(
                str(raw["instruction"][i]), str(raw["tree"][i]), str(raw["error"][i]),
                self.max_slots,
            )  # fmt: skip
            feats.append(f)
            commands.append(c)
        return torch.from_numpy(np.stack(feats)).to(self.device), commands

    def _slots(self, actions: Any) -> list[int]:
        arr = actions.detach().cpu().numpy() if torch.is_tensor(actions) else np.asarray(actions)
        if arr.shape != (self.num_envs,):
            raise ValueError(
                f"expected {self.num_envs} slot actions (shape ({self.num_envs},)), got shape "
                f"{arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise ValueError(f"slot actions must be integers, got {arr.tolist()[:8]}")
            arr = arr.astype(np.int64)
        bad = np.flatnonzero((arr < 0) | (arr >= self.max_slots))
        if bad.size:
            raise ValueError(
                f"actions out of the action space Discrete({self.max_slots}) in worlds "
                f"{bad[:8].tolist()}: {arr[bad[:8]].tolist()}"
            )
        return [int(a) for a in arr]

    def commands(self, actions: Any) -> list[Any]:
        """The command each world gets for the slot ``actions`` (one per world)."""
        out = []
        for i, k in enumerate(self._slots(actions)):
            cmds = self._commands[i]
            out.append(cmds[k] if k < len(cmds) else f"click {MISSING_REF}")
        return out

    def slot_commands(self) -> list[list[Any]]:
        """Per world, the command of each slot that holds an element (slot order)."""
        return [list(c) for c in self._commands]

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, **kwargs: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        raw, info = self.env.reset(**kwargs)
        self.raw_obs = raw
        obs, self._commands = self._features(raw)
        return obs, info

    def step(
        self, actions: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        if self.raw_obs is None:
            raise RuntimeError("call reset() before step()")
        cmds = self.commands(actions)
        raw, rew, term, trunc, info = self.env.step(cmds)
        self.raw_obs = raw
        obs, self._commands = self._features(raw)
        info = dict(info)
        sent = np.empty(self.num_envs, dtype=object)
        sent[:] = cmds
        info["command"] = sent
        if keys.FINAL_OBS in info:
            final_feats, _ = self._features(info[keys.FINAL_OBS])
            info[keys.FINAL_OBS] = final_feats
        return obs, rew, term, trunc, info

    # ------------------------------------------------------------------ extras
    def oracle_action(self) -> torch.Tensor:
        """The slot of the env's oracle command in each world, or ``-1`` where no slot sends
        that command (e.g. a ``drag`` or ``noop``); ``-1`` is not a valid action."""
        out = []
        for i, oracle in enumerate(self.env.unwrapped.oracle_action()):
            cmds = self._commands[i]
            out.append(next((k for k, c in enumerate(cmds) if c == oracle), -1))
        return torch.tensor(out, dtype=torch.int64, device=self.device)

    def target_from_obs(self, obs: Any) -> torch.Tensor:
        """Not available: the features do not determine the tokens of the page (the target
        still comes from the raw page, see :attr:`raw_obs`)."""
        raise NotImplementedError(
            "BrowserSlotActions observations are features; next_obs_target is the raw page's "
            "tokens (see raw_obs)"
        )


def best_overlap_slot(obs: torch.Tensor | np.ndarray) -> np.ndarray:
    """A simple scripted policy over the features: per world, the present slot with the
    highest ``name_quoted + name_overlap`` (ties: the first). Used by tests and as a sanity
    baseline; it solves tasks whose answer is one named element (e.g. ClickButton)."""
    x = obs.detach().cpu().numpy() if torch.is_tensor(obs) else np.asarray(obs)
    score = x[..., _COL["name_quoted"]] + x[..., _COL["name_overlap"]]
    score = np.where(x[..., _COL["present"]] > 0, score, -1.0)
    return score.argmax(-1).astype(np.int64)


def feature_index(name: str) -> int:
    """Column of feature ``name`` in the observation (see :data:`FEATURES`)."""
    return _COL[name]


__all__ = [
    "FEATURES",
    "MISSING_REF",
    "NUM_FEATURES",
    "BrowserSlotActions",
    "best_overlap_slot",
    "feature_index",
    "interactive_nodes",
    "page_features",
    "slot_command",
]
