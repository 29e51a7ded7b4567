"""Scenario files: shipped ones validate; broken ones get errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from envgym.dsl import ScenarioError
from envgym.phone.compiler import compile_scenarios
from envgym.phone.scenarios import load_scenario, load_scenario_file, scenario_dir, shipped_names


@pytest.mark.parametrize("name", shipped_names())
def test_shipped_scenarios_load_and_compile(name: str) -> None:
    sc = load_scenario_file(scenario_dir() / f"{name}.yaml")
    assert sc.name == name
    compiled = compile_scenarios([sc])
    assert compiled.plans[0].services


def _write(tmp_path: Path, data: object, name: str = "mock.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def _mock_dict() -> dict:
    return yaml.safe_load((scenario_dir() / "mock.yaml").read_text())


def test_unknown_department_names_the_path(tmp_path: Path) -> None:
    d = _mock_dict()
    d["company"]["numbers"][0]["routes_to"] = {"department": "billing"}
    p = _write(tmp_path, d)
    with pytest.raises(ScenarioError) as e:
        load_scenario_file(p)
    msg = str(e.value)
    assert str(p) in msg and "company.numbers[0].routes_to.department" in msg
    assert "unknown department 'billing'" in msg


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "name: x\ncompany: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"line \d+, column \d+: YAML syntax error"):
        load_scenario_file(p)


def test_missing_and_extra_fields(tmp_path: Path) -> None:
    d = _mock_dict()
    del d["goal"]
    d["user"]["favourite_colour"] = "blue"
    with pytest.raises(ScenarioError) as e:
        load_scenario_file(_write(tmp_path, d))
    msg = str(e.value)
    assert "goal: Field required" in msg
    assert "user.favourite_colour: Extra inputs are not permitted" in msg


def test_unquoted_yaml_boolean_gets_a_hint(tmp_path: Path) -> None:
    d = _mock_dict()
    text = yaml.safe_dump(d).replace("password: old", "password: off")
    with pytest.raises(ScenarioError, match="quote the value"):
        load_scenario_file(_write(tmp_path, text))


def test_unreachable_goal_is_rejected_at_compile_time() -> None:
    sc = load_scenario("mock")
    bad = sc.model_copy(update={"goal": sc.goal.model_copy(update={"records": {"password": "x"}})})
    with pytest.raises(ScenarioError, match=r"goal\.records: unreachable"):
        compile_scenarios([bad])


def test_unknown_shipped_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="isp_bill_discount"):
        load_scenario("no_such_scenario")


def test_json_schema_export() -> None:
    import json

    from envgym.dsl import json_schema
    from envgym.phone.models import PhoneScenario

    schema = json.loads(json_schema(PhoneScenario))
    assert schema["additionalProperties"] is False
    assert "company" in schema["properties"]
    assert all("description" in v for v in schema["properties"].values())


def test_name_must_match_the_file_stem(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="must equal the file name's stem 'other'"):
        load_scenario_file(_write(tmp_path, _mock_dict(), name="other.yaml"))


def test_validate_rejects_a_turn_limit_too_short_for_the_oracle(tmp_path: Path) -> None:
    from envgym.cli import validate_file

    d = _mock_dict()
    d["company"]["departments"][0]["hold"] = [3, 3]
    d["constraints"]["max_turns"] = 5  # dial, 3 holds, request, provide: 6 turns
    ok, msg = validate_file(_write(tmp_path, d))
    assert not ok and "constraints.max_turns" in msg and "0% of 8" in msg
    d["constraints"]["max_turns"] = 6
    ok, msg = validate_file(_write(tmp_path, d))
    assert ok, msg


def test_committed_json_schema_is_current() -> None:
    from envgym.dsl import json_schema
    from envgym.phone.models import PhoneScenario

    committed = (Path(__file__).parent.parent / "docs" / "phone.schema.json").read_text()
    assert committed.strip() == json_schema(PhoneScenario).strip(), (
        "regenerate with: envgym schema phone --out docs/phone.schema.json"
    )


def test_placeholder_its_kind_does_not_fill_is_rejected(tmp_path: Path) -> None:
    d = _mock_dict()
    d["phrasing"] = {"verified": ["Thanks {rep}, verified."], "greeting": ["{company}, {rep}."]}
    d["policies"]["services"][0]["done"] = "Done for {fact}."
    with pytest.raises(ScenarioError) as e:
        load_scenario_file(_write(tmp_path, d))
    msg = str(e.value)
    assert "phrasing.verified[0]: placeholder {rep} is not filled in 'verified'" in msg
    assert "policies.services[0].done: placeholders are not filled" in msg
    assert "greeting" not in msg
