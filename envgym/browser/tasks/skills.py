"""MiniWoB++-style GUI skill tasks, each generated from ``(seed, difficulty)``.

Every task is a tiny web app whose records live in Python; the page shows the widgets and a
submit button, and the episode ends when an answer is submitted (success when it is right).
``difficulty`` (0-4) adds choices, distractor fields and distance to the answer.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt

import numpy as np

from envgym.browser.tasks.base import (
    Judgement,
    PageView,
    Request,
    Response,
    Task,
    esc,
    layout,
)

WORDS = [
    "Apple",
    "Banana",
    "Cherry",
    "Grape",
    "Lemon",
    "Mango",
    "Olive",
    "Peach",
    "Pear",
    "Plum",
    "Berry",
    "Melon",
    "Amber",
    "Azure",
    "Coral",
    "Ivory",
    "Jade",
    "Lilac",
    "Ruby",
    "Sage",
    "Slate",
    "Teal",
    "Maple",
    "Cedar",
    "Birch",
    "Aspen",
    "Willow",
    "Falcon",
    "Heron",
    "Otter",
    "Panda",
    "Tiger",
    "Zebra",
    "Lotus",
    "Orchid",
    "Tulip",
    "Violet",
    "Comet",
    "Nova",
    "Orbit",
    "Pixel",
    "Quartz",
    "Rocket",
    "Vector",
]
FIRST = [
    "Ada",
    "Ben",
    "Cara",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Iris",
    "Jonas",
    "Kira",
    "Leo",
    "Maya",
    "Nico",
    "Omar",
    "Priya",
]
LAST = [
    "Alvarez",
    "Brooks",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hale",
    "Ito",
    "Jensen",
    "Kim",
    "Lopez",
    "Moreau",
]
CITIES = [
    "Austin",
    "Boston",
    "Denver",
    "Lisbon",
    "Madrid",
    "Nairobi",
    "Osaka",
    "Paris",
    "Quito",
    "Seoul",
    "Tunis",
    "Vienna",
]
COUNTRIES = [
    "Canada",
    "Chile",
    "Egypt",
    "France",
    "Ghana",
    "India",
    "Japan",
    "Kenya",
    "Mexico",
    "Norway",
    "Peru",
    "Spain",
]


def _pick(r: np.random.Generator, items: list[str] | tuple[str, ...], k: int) -> list[str]:
    return [items[i] for i in r.choice(len(items), size=k, replace=False)]


_SUBMIT_JS = """<script>
function envgymSubmit(form, ev) {
  // The answer goes in a synchronous POST (the records change before the click returns) and
  // the page is replaced in place: no page load for the last step of an episode.
  const data = new URLSearchParams(new FormData(form, ev.submitter));
  const x = new XMLHttpRequest();
  x.open('POST', '/submit', false);
  x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
  x.send(data.toString());
  history.replaceState(null, '', '/done');
  document.title = 'Done';
  document.body.innerHTML = '<p>Thank you, your answer was recorded.</p>';
  return false;
}
</script>"""


class _Submitting(Task):
    """A task whose answer is one POST to ``/submit``; ``check(answer)`` judges it."""

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        self.rng = np.random.default_rng(seed)
        self.answer: dict[str, list[str]] | None = None

    def page(self, req: Request) -> str:
        raise NotImplementedError

    def check(self, answer: dict[str, list[str]]) -> bool:
        raise NotImplementedError

    def handle(self, req: Request) -> Response:
        if req.method == "POST" and req.path == "/submit":
            if self.answer is None:
                self.answer = req.form
            return Response.redirect("/done")
        if req.path == "/done":
            return Response(layout("Done", "<p>Thank you, your answer was recorded.</p>"))
        html = self.page(req).replace(
            "<form method=post action=/submit>",
            '<form method=post action=/submit onsubmit="return envgymSubmit(this, event)">',
        )
        return Response(html.replace("</body>", _SUBMIT_JS + "</body>"))

    def judge(self) -> Judgement:
        if self.answer is None:
            return Judgement(False, False)
        return Judgement(self.check(self.answer), True)

    def first(self, name: str) -> str:
        """The submitted value of field ``name``."""
        assert self.answer is not None
        return (self.answer.get(name) or [""])[-1]


def _submit_or(view: PageView, label: str = "Submit") -> str:
    ref = view.ref("button", label)
    return f"click {ref}" if ref else "noop"


class ClickButton(_Submitting):
    """Click the button with the named label among ``3 + 2*difficulty`` buttons."""

    name = "ClickButton"
    title = "click the named button"
    max_steps = 6

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        self.labels = _pick(self.rng, WORDS, 3 + 2 * self.difficulty)
        self.target = self.labels[int(self.rng.integers(len(self.labels)))]
        self.instruction = f'Click the button labelled "{self.target}".'

    def page(self, req: Request) -> str:
        buttons = "".join(
            f'<button name=choice value="{esc(w)}">{esc(w)}</button>' for w in self.labels
        )
        return layout("Buttons", f"<form method=post action=/submit>{buttons}</form>")

    def check(self, answer: dict[str, list[str]]) -> bool:
        return self.first("choice") == self.target

    def oracle(self, view: PageView) -> str:
        return _submit_or(view, self.target)


class EnterText(_Submitting):
    """Type a word into the named field (distractor fields grow with difficulty), submit."""

    name = "EnterText"
    title = "type into a named field"
    max_steps = 8
    FIELDS = ("First name", "Last name", "City", "Nickname", "Team", "Pet")

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        n = min(1 + self.difficulty, len(self.FIELDS))
        self.fields = _pick(self.rng, self.FIELDS, n)
        self.target = self.fields[int(self.rng.integers(n))]
        self.word = str(self.rng.choice(WORDS)) + str(int(self.rng.integers(10, 99)))
        self.instruction = f'Type "{self.word}" into the "{self.target}" field and submit.'

    def page(self, req: Request) -> str:
        inputs = "".join(
            f'<label>{esc(f)} <input name="f{i}" aria-label="{esc(f)}"></label>'
            for i, f in enumerate(self.fields)
        )
        return layout(
            "Form", f"<form method=post action=/submit>{inputs}<button>Submit</button></form>"
        )

    def check(self, answer: dict[str, list[str]]) -> bool:
        return self.first(f"f{self.fields.index(self.target)}") == self.word

    def oracle(self, view: PageView) -> str:
        box = view.find("textbox", self.target)
        if box is not None and box.value != self.word:
            return f"fill {box.ref} {self.word}"
        return _submit_or(view)


class SelectList(_Submitting):
    """Pick the named option from a drop-down list, submit."""

    name = "SelectList"
    title = "pick from a list"
    max_steps = 6

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        self.options = _pick(self.rng, WORDS, 4 + 3 * self.difficulty)
        self.target = self.options[1 + int(self.rng.integers(len(self.options) - 1))]
        self.instruction = f'Select "{self.target}" from the list and submit.'

    def page(self, req: Request) -> str:
        opts = "".join(f"<option>{esc(o)}</option>" for o in self.options)
        return layout(
            "List",
            "<form method=post action=/submit><label>Item <select name=item aria-label=Item>"
            f"{opts}</select></label><button>Submit</button></form>",
        )

    def check(self, answer: dict[str, list[str]]) -> bool:
        return self.first("item") == self.target

    def oracle(self, view: PageView) -> str:
        box = view.find("combobox", "Item")
        if box is None:
            return "noop"
        idx = view.nodes.index(box)
        selected = next(
            (
                n.name
                for n in view.nodes[idx + 1 :]
                if n.depth > box.depth and n.role == "option" and "selected" in n.attrs
            ),
            None,
        )
        if selected != self.target:
            return f"select {box.ref} {self.target}"
        return _submit_or(view)


class Checkboxes(_Submitting):
    """Tick exactly the named checkboxes, submit."""

    name = "Checkboxes"
    title = "tick checkboxes"
    max_steps = 10

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        self.labels = _pick(self.rng, WORDS, 3 + 2 * self.difficulty)
        k = 1 + int(self.rng.integers(min(3, len(self.labels) - 1)))
        self.targets = sorted(_pick(self.rng, self.labels, k))
        self.instruction = "Tick " + ", ".join(f'"{t}"' for t in self.targets) + " and submit."

    def page(self, req: Request) -> str:
        boxes = "".join(
            f'<label><input type=checkbox name=ticked value="{esc(w)}"> {esc(w)}</label>'
            for w in self.labels
        )
        return layout(
            "Checkboxes", f"<form method=post action=/submit>{boxes}<button>Submit</button></form>"
        )

    def check(self, answer: dict[str, list[str]]) -> bool:
        return sorted(answer.get("ticked", [])) == self.targets

    def oracle(self, view: PageView) -> str:
        for w in self.labels:
            box = view.find("checkbox", w)
            if box is None:
                continue
            ticked = "checked" in box.attrs
            if ticked != (w in self.targets):
                return f"{'uncheck' if ticked else 'check'} {box.ref}"
        return _submit_or(view)


class NavigateTabs(_Submitting):
    """Open the named tab and click the named button in it (the same labels recur per tab)."""

    name = "NavigateTabs"
    title = "navigate tabs"
    max_steps = 8

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        self.tabs = _pick(
            self.rng,
            ("Home", "Billing", "Profile", "Orders", "Help", "Settings"),
            2 + min(self.difficulty, 4),
        )
        self.buttons = _pick(self.rng, WORDS, 3)
        self.tab = self.tabs[1 + int(self.rng.integers(len(self.tabs) - 1))]
        self.button = self.buttons[int(self.rng.integers(3))]
        self.instruction = f'Open the "{self.tab}" tab and click "{self.button}" there.'

    def page(self, req: Request) -> str:
        cur = req.query.get("tab", self.tabs[0])
        if cur not in self.tabs:
            cur = self.tabs[0]
        tabs = "".join(
            f'<a role=tab href="/?tab={esc(t)}" aria-selected={"true" if t == cur else "false"}>'
            f"{esc(t)}</a> "
            for t in self.tabs
        )
        buttons = "".join(
            f'<button name=choice value="{esc(cur)}:{esc(b)}">{esc(b)}</button>'
            for b in self.buttons
        )
        return layout(
            "Tabs",
            f'<div role=tablist aria-label=Sections>{tabs}</div><div role=tabpanel aria-label="'
            f'{esc(cur)}"><h2>{esc(cur)}</h2><form method=post action=/submit>{buttons}</form>'
            "</div>",
        )

    def check(self, answer: dict[str, list[str]]) -> bool:
        return self.first("choice") == f"{self.tab}:{self.button}"

    def oracle(self, view: PageView) -> str:
        tab = view.find("tab", self.tab)
        if tab is not None and "selected" not in tab.attrs:
            return f"click {tab.ref}"
        return _submit_or(view, self.button)


class FillForm(_Submitting):
    """Fill a multi-field form (text fields, a country list, a consent checkbox), submit."""

    name = "FillForm"
    title = "fill a multi-field form"
    max_steps = 14

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        r = self.rng
        first, last = str(r.choice(FIRST)), str(r.choice(LAST))
        values: dict[str, str] = {
            "Full name": f"{first} {last}",
            "Email": f"{first.lower()}.{last.lower()}@example.org",
        }
        if self.difficulty >= 1:
            values["City"] = str(r.choice(CITIES))
        if self.difficulty >= 3:
            values["Phone"] = f"555-{int(r.integers(1000, 9999))}"
        self.text_values = values
        self.countries = _pick(r, COUNTRIES, 4 + self.difficulty)
        self.country = self.countries[1 + int(r.integers(len(self.countries) - 1))]
        self.consent = bool(self.difficulty >= 2 or r.integers(2))
        parts = [f'{k}: "{v}"' for k, v in values.items()] + [f'Country: "{self.country}"']
        parts.append("tick the newsletter box" if self.consent else "leave the newsletter box")
        self.instruction = "Fill in the form with " + "; ".join(parts) + ", then submit."

    def page(self, req: Request) -> str:
        fields = "".join(
            f'<label>{esc(k)} <input name="t{i}" aria-label="{esc(k)}"></label>'
            for i, k in enumerate(self.text_values)
        )
        opts = "".join(f"<option>{esc(c)}</option>" for c in self.countries)
        return layout(
            "Sign-up form",
            f"<h1>Sign up</h1><form method=post action=/submit>{fields}"
            f"<label>Country <select name=country aria-label=Country>{opts}</select></label>"
            "<label><input type=checkbox name=newsletter value=yes> Newsletter</label>"
            "<button>Submit</button></form>",
        )

    def check(self, answer: dict[str, list[str]]) -> bool:
        texts = all(self.first(f"t{i}") == v for i, v in enumerate(self.text_values.values()))
        return (
            texts
            and self.first("country") == self.country
            and (self.first("newsletter") == "yes") == self.consent
        )

    def oracle(self, view: PageView) -> str:
        for k, v in self.text_values.items():
            box = view.find("textbox", k)
            if box is not None and box.value != v:
                return f"fill {box.ref} {v}"
        box = view.find("combobox", "Country")
        if box is not None:
            idx = view.nodes.index(box)
            chosen = next(
                (
                    n.name
                    for n in view.nodes[idx + 1 :]
                    if n.role == "option" and "selected" in n.attrs
                ),
                None,
            )
            if chosen != self.country:
                return f"select {box.ref} {self.country}"
        nl = view.find("checkbox", "Newsletter")
        if nl is not None and ("checked" in nl.attrs) != self.consent:
            return f"{'check' if self.consent else 'uncheck'} {nl.ref}"
        return _submit_or(view)


class DatePicker(_Submitting):
    """Pick a date in a calendar widget (month by month from a seeded 'today'), submit."""

    name = "DatePicker"
    title = "pick a date in a calendar"
    max_steps = 16

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        r = self.rng
        self.today = dt.date(2026, 1, 1) + dt.timedelta(days=int(r.integers(0, 365)))
        months = int(r.integers(-self.difficulty, self.difficulty + 1))
        y, m = divmod(self.today.month - 1 + months, 12)
        year, month = self.today.year + y, m + 1
        day = int(r.integers(1, calendar.monthrange(year, month)[1] + 1))
        self.target = dt.date(year, month, day)
        self.selected: dt.date | None = None
        self.instruction = f"Set the date to {self.target.isoformat()} and submit."

    @staticmethod
    def _month(text: str, default: dt.date) -> dt.date:
        try:
            y, m = (int(x) for x in text.split("-"))
            return dt.date(y, m, 1)
        except ValueError:
            return default.replace(day=1)

    def handle(self, req: Request) -> Response:
        if req.method == "POST" and req.path == "/pick":
            with contextlib.suppress(ValueError):
                self.selected = dt.date.fromisoformat(req.get("date"))
            return Response.redirect("/", m=req.get("m"))
        return super().handle(req)

    def page(self, req: Request) -> str:
        first = self._month(req.query.get("m", ""), self.today)
        prev = (first - dt.timedelta(days=1)).replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        ym = f"{first.year}-{first.month:02d}"
        days = calendar.monthrange(first.year, first.month)[1]
        cells = "".join(
            f'<button name=date value="{first.replace(day=d).isoformat()}" '
            f'aria-label="{calendar.month_name[first.month]} {d}, {first.year}">{d}</button>'
            for d in range(1, days + 1)
        )
        sel = self.selected.isoformat() if self.selected else "none"
        return layout(
            "Date picker",
            f"<p>Selected date: {sel}</p>"
            f'<a href="/?m={prev.year}-{prev.month:02d}">Previous month</a> '
            f"<h2>{calendar.month_name[first.month]} {first.year}</h2>"
            f'<a href="/?m={nxt.year}-{nxt.month:02d}">Next month</a>'
            f'<form method=post action=/pick><input type=hidden name=m value="{ym}">'
            f"<div role=group aria-label=Days>{cells}</div></form>"
            f'<form method=post action=/submit><input type=hidden name=date value="{sel}">'
            "<button>Submit</button></form>",
        )

    def check(self, answer: dict[str, list[str]]) -> bool:
        return self.first("date") == self.target.isoformat()

    def oracle(self, view: PageView) -> str:
        if self.selected == self.target:
            return _submit_or(view)
        shown = self._month(view.query.get("m", ""), self.today)
        want = self.target.replace(day=1)
        if shown != want:
            label = "Next month" if want > shown else "Previous month"
            ref = view.ref("link", label)
            return f"click {ref}" if ref else "noop"
        label = f"{calendar.month_name[self.target.month]} {self.target.day}, {self.target.year}"
        ref = view.ref("button", label)
        return f"click {ref}" if ref else "noop"


_DRAG_JS = """
<script>
{  // a block: episodes are written into the same window, so no global redeclarations
let held = null, dx = 0, dy = 0;
document.addEventListener('mousedown', e => {
  const it = e.target.closest('.item'); if (!it) return;
  held = it; dx = e.clientX - it.offsetLeft; dy = e.clientY - it.offsetTop; e.preventDefault();
});
document.addEventListener('mousemove', e => {
  if (!held) return;
  held.style.left = (e.clientX - dx) + 'px'; held.style.top = (e.clientY - dy) + 'px';
});
document.addEventListener('mouseup', e => {
  if (!held) return; const it = held; held = null;
  const zone = [...document.querySelectorAll('.zone')].find(z => {
    const r = z.getBoundingClientRect();
    return e.clientX >= r.left && e.clientX <= r.right
      && e.clientY >= r.top && e.clientY <= r.bottom;
  });
  const x = new XMLHttpRequest();
  x.open('POST', '/api/drop', false);  // synchronous: the records change before the action returns
  x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
  const zn = zone ? zone.dataset.name : '';
  x.send('item=' + encodeURIComponent(it.dataset.name) + '&zone=' + encodeURIComponent(zn));
  if (zone) { zone.appendChild(it); it.style.position = 'static'; }
});
}
</script>
"""


class DragDrop(Task):
    """Drag the named item into the named box with the mouse (coordinate actions)."""

    name = "DragDrop"
    title = "drag and drop"
    max_steps = 8
    boxes = True

    ITEM_W, ITEM_H = 110, 36
    ZONE_W, ZONE_H = 200, 110

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        r = np.random.default_rng(seed)
        self.items = _pick(r, WORDS, 2 + self.difficulty)
        self.zones = _pick(
            r, ("Inbox", "Archive", "Later", "Trash", "Shared", "Done"), 2 + min(self.difficulty, 3)
        )
        self.item = self.items[int(r.integers(len(self.items)))]
        self.zone = self.zones[int(r.integers(len(self.zones)))]
        jitter = r.integers(0, 20, size=len(self.items) + len(self.zones))
        self.item_pos = {w: (40 + int(jitter[i]), 80 + 60 * i) for i, w in enumerate(self.items)}
        self.zone_pos = {
            z: (400 + int(jitter[len(self.items) + i]), 60 + 130 * i)
            for i, z in enumerate(self.zones)
        }
        self.placed: dict[str, str] = {}
        self.instruction = f'Drag "{self.item}" into the "{self.zone}" box.'

    def handle(self, req: Request) -> Response:
        if req.method == "POST" and req.path == "/api/drop":
            item, zone = req.get("item"), req.get("zone")
            if item in self.items and zone in self.zones:
                self.placed[item] = zone
            return Response("ok", content_type="text/plain")
        items = "".join(
            f'<div class=item data-name="{esc(w)}" role=button aria-label="{esc(w)}" '
            f'style="position:absolute;left:{x}px;top:{y}px;width:{self.ITEM_W}px;'
            f'height:{self.ITEM_H}px;background:#fd6;cursor:move">{esc(w)}</div>'
            for w, (x, y) in self.item_pos.items()
            if w not in self.placed
        )
        zones = "".join(
            f'<div class=zone data-name="{esc(z)}" role=region aria-label="{esc(z)}" '
            f'style="position:absolute;left:{x}px;top:{y}px;width:{self.ZONE_W}px;'
            f'height:{self.ZONE_H}px;border:2px dashed #555">{esc(z)}: '
            + "".join(f"<span>{esc(w)}</span> " for w, zz in self.placed.items() if zz == z)
            + "</div>"
            for z, (x, y) in self.zone_pos.items()
        )
        return Response(layout("Drag and drop", items + zones, head=_DRAG_JS))

    def judge(self) -> Judgement:
        if self.item not in self.placed:
            return Judgement(False, False)
        return Judgement(self.placed[self.item] == self.zone, True)

    def oracle(self, view: PageView) -> str:
        x, y = self.item_pos[self.item]
        zx, zy = self.zone_pos[self.zone]
        return (
            f"drag {x + self.ITEM_W // 2} {y + self.ITEM_H // 2} "
            f"{zx + self.ZONE_W // 2} {zy + self.ZONE_H // 2}"
        )


SKILL_TASKS: dict[str, type[Task]] = {
    t.name: t
    for t in (
        ClickButton,
        EnterText,
        SelectList,
        Checkboxes,
        NavigateTabs,
        FillForm,
        DatePicker,
        DragDrop,
    )
}
"""Skill tasks by id part."""
