"""TRL's GRPOTrainer on served phone episodes (baselines/trl_grpo_phone.py), offline and tiny:
episodes, rewards and env-token masks flow end to end (not that the model learns)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("trl", reason="needs the trl extra")
os.environ["HF_HUB_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "trl_grpo_phone", ROOT / "baselines" / "trl_grpo_phone.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["trl_grpo_phone"] = module
    spec.loader.exec_module(module)
    return module


def _check_tokens(result: dict, n_episodes: int) -> None:
    episodes, tok = result["episode_tokens"], result["tokenizer"]
    assert len(episodes) == result["episodes"] == n_episodes
    for ep in episodes:
        assert len(ep.completion_ids) == len(ep.env_mask) == len(ep.logprobs)
        assert set(ep.env_mask) == {0, 1}  # both the model's and the env's tokens
        assert len(ep.env_spans) == len(ep.rewards) == len(ep.next_obs_targets) >= 1
        for (start, end), text in zip(ep.env_spans, ep.env_texts, strict=True):
            assert end > start and set(ep.env_mask[start:end]) == {0}
            assert tok.decode(ep.completion_ids[start:end]) == text  # byte-level: lossless
            assert text.startswith("<|user|>\n") and text.endswith("<|assistant|>\n")
        outside = [
            m for i, m in enumerate(ep.env_mask) if not any(a <= i < b for a, b in ep.env_spans)
        ]
        assert set(outside) == {1}  # every token outside the spans is the model's
        for target in ep.next_obs_targets:
            assert isinstance(target, np.ndarray) and target.dtype == np.int32
    logged = [row for row in result["log_history"] if "reward" in row]
    assert len(logged) == 2  # one row per optimizer step
    returns = [ep.episode_return for ep in episodes]
    assert np.mean([row["reward"] for row in logged]) == pytest.approx(np.mean(returns), abs=1e-4)


def test_grpo_group_rollouts_through_the_server(tmp_path: Path) -> None:
    mod = _load()
    # The trained model plays: 2 steps x 1 prompt x a group of 2.
    args = mod.parse_args(["--output-dir", str(tmp_path / "model"), "--max-steps", "2"])
    result = mod.main(args)
    _check_tokens(result, 4)
    assert all(ep.rewards for ep in result["episode_tokens"])
    assert (tmp_path / "model" / "summary.json").exists()

    # The world-model loss of docs/llm_agents.md runs on these episodes.
    text = (ROOT / "docs" / "llm_agents.md").read_text()
    block = next(b.split("```")[0] for b in text.split("```python\n")[1:] if "wm_loss" in b)
    scope = {"model": result["model"], "ep": result["episode_tokens"][0]}
    exec(compile(block, "llm_agents.md", "exec"), scope)
    assert scope["wm_loss"].item() > 0 and scope["wm_loss"].requires_grad

    # The scripted oracle plays through the same token path: successful episodes.
    args = mod.parse_args(
        ["--output-dir", str(tmp_path / "oracle"), "--policy", "oracle", "--max-turns", "40"]
    )
    result = mod.main(args)
    _check_tokens(result, 4)
    assert result["success_rate"] == 1.0
    assert all(ep.terminated and ep.episode_return > 0 for ep in result["episode_tokens"])
