"""The browser family: GUI tasks in real Chromium through Playwright.

Importing this package does not import Playwright; it is loaded when an env is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envgym.browser.env import BrowserEnv, BrowserVectorEnv
    from envgym.core.family import DemoTask

__all__ = ["BrowserEnv", "BrowserVectorEnv", "demo_tasks", "make_single", "make_vector"]


def make_single(**kwargs: Any) -> BrowserEnv:
    """Entry point of ``gym.make('envgym/Browser-<Task>-v0', ...)``."""
    from envgym.browser.env import BrowserEnv

    return BrowserEnv(**kwargs)


def make_vector(num_envs: int = 1, **kwargs: Any) -> BrowserVectorEnv:
    """Entry point of ``gym.make_vec(..., vectorization_mode='vector_entry_point')``."""
    from envgym.browser.env import BrowserVectorEnv

    kwargs.pop("render_mode", None)
    return BrowserVectorEnv(num_envs=num_envs, **kwargs)


def demo_tasks() -> list[DemoTask]:
    """A short browser section for ``envgym demo``: two skill tasks and one portal task, on 4
    pages for 40 steps each (empty when Playwright or Chromium is missing)."""
    import importlib.util

    from envgym.browser.ids import browser_id, portal_task_name
    from envgym.browser.launch import chromium_executable
    from envgym.core.family import DemoTask

    if importlib.util.find_spec("playwright") is None or chromium_executable() is None:
        return []
    cap = {"max_envs": 4, "max_steps": 40}
    return [
        DemoTask("browser", "ClickButton", browser_id("ClickButton"), {}, **cap),
        DemoTask("browser", "FillForm", browser_id("FillForm"), {}, **cap),
        DemoTask(
            "browser",
            "portal isp_bill_discount",
            browser_id(portal_task_name("isp_bill_discount")),
            {},
            **cap,
        ),
    ]


def __getattr__(name: str) -> Any:
    if name in ("BrowserEnv", "BrowserVectorEnv"):
        from envgym.browser import env

        return getattr(env, name)
    raise AttributeError(name)
