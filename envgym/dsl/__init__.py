"""Shared DSL machinery: YAML loading, error reporting, JSON Schema export."""

from envgym.dsl.errors import Problem, ScenarioError
from envgym.dsl.loading import json_schema, load_model, read_yaml, validate_data

__all__ = ["Problem", "ScenarioError", "json_schema", "load_model", "read_yaml", "validate_data"]
