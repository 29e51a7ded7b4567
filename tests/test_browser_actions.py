"""Browser family: coordinate actions, go_back, scroll and the vector env's batched outputs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envgym  # noqa: F401
from envgym.browser.env import BrowserVectorEnv, decode_tokens
from envgym.browser.tasks.base import Judgement, PageView, Request, Response, Task, layout

pytestmark = pytest.mark.browser


class BigButton(Task):
    """A button at a fixed place, to be clicked by coordinates; a tall page to scroll."""

    name = "BigButton"
    boxes = True
    max_steps = 10

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        super().__init__(seed, difficulty)
        self.clicked = False
        self.instruction = "Click the big button with the mouse."

    def handle(self, req: Request) -> Response:
        if req.method == "POST":
            self.clicked = True
            return Response.redirect("/thanks")
        if req.path == "/thanks":
            return Response(layout("Thanks", "<p>Clicked.</p>"))
        return Response(
            layout(
                "Big",
                "<form method=post action=/go><button style='position:absolute;left:100px;"
                "top:200px;width:200px;height:80px'>Big</button></form>"
                "<a href='/more'>More</a><div style='height:3000px'></div><p>Bottom</p>",
            )
        )

    def judge(self) -> Judgement:
        return Judgement(self.clicked, self.clicked)

    def oracle(self, view: PageView) -> str:
        return "mouse_click 200 240"


def test_mouse_click_by_coordinates_submits() -> None:
    env = gym.make("envgym/Browser-ClickButton-v0", task=BigButton)
    try:
        obs, _ = env.reset(seed=0)
        assert "[box=" in obs["tree"]
        _, r, term, _, info = env.step("mouse_click 10 10")  # empty space: nothing happens
        assert not term and info["action_error"] == ""
        obs, r, term, _, info = env.step("mouse_click 200 240")
        assert term and info["success"] and r > 0.9
        assert obs["url"] == "http://envgym.test/thanks"
    finally:
        env.close()


def test_go_back_stays_within_the_episode_and_scroll_moves_boxes() -> None:
    env = gym.make("envgym/Browser-ClickButton-v0", task=BigButton)
    try:
        obs, _ = env.reset(seed=0)
        _, _, _, _, info = env.step("go_back")
        assert info["action_error"] == "no previous page in this episode"
        link = PageView(obs["url"], obs["tree"]).ref("link", "More")
        obs, *_ = env.step(f"click {link}")
        assert obs["url"].endswith("/more")
        obs, _, _, _, info = env.step("go_back")
        assert info["action_error"] == "" and obs["url"] == "http://envgym.test/"
        _, _, _, _, info = env.step("go_back")
        assert info["action_error"] == "no previous page in this episode"
        before = obs["tree"]
        obs, *_ = env.step("scroll 0 500")
        assert obs["tree"] != before  # boxes are viewport coordinates
        # A new episode starts at the top again.
        obs, *_ = env.step("noop")
    finally:
        env.close()


def test_vector_outputs_are_batched_tensors() -> None:
    envs = BrowserVectorEnv(3, "SelectList", device="cpu")
    try:
        obs, _ = envs.reset(seed=4)
        assert obs["tokens"].dtype == torch.int32 and obs["tokens"].shape == (3, 4096)
        assert obs["tree"].shape == (3,) and isinstance(obs["tree"][0], str)
        assert decode_tokens(obs["tokens"][1]).startswith(obs["instruction"][1])
        _, rew, term, trunc, info = envs.step(["noop", "click e999", "nonsense"])
        assert rew.dtype == torch.float32 and term.dtype == torch.bool
        assert info["action_error"].tolist() == [0, 2, 1]
        assert torch.allclose(sum(info["reward_terms"].values()), rew)
        # Worlds are independent: different seeds, different pages.
        assert len(set(obs["tree"].tolist())) == 3
        with pytest.raises(ValueError, match="expected 3 actions"):
            envs.step(["noop"])
        with pytest.raises(ValueError, match="strings or dicts"):
            envs.step(["noop", 1, "noop"])
        with pytest.raises(NotImplementedError, match="snapshot"):
            envs.get_state()
        np.testing.assert_array_equal(envs.target_from_obs(obs).numpy(), obs["tokens"].numpy())
    finally:
        envs.close()
