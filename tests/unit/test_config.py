from __future__ import annotations

import pytest

from zentinel_operator import config


def test_defaults_and_env_parsing() -> None:
    s = config.load({"ZENTINEL_OPERATOR_NAMESPACES": "a, b,,c", "ZENTINEL_OPERATOR_SCAN_INTERVAL": "2.5"})
    assert s.namespaces == ["a", "b", "c"]
    assert s.scan_interval == 2.5
    assert config.load({}).namespaces == []


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(SystemExit) as e:
        config.load({"ZENTINEL_OPERATOR_METRICS_PORT": "seventy"})
    assert "ZENTINEL_OPERATOR_METRICS_PORT" in str(e.value)
