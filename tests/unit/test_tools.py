"""The tools table: optional tools (Alertmanager, for the detection-latency benchmark) stay out of the
default build CI runs, and are built when named."""

from __future__ import annotations

from pathlib import Path

import pytest

from zentinel_devcluster import tools


def test_alertmanager_is_optional_and_every_other_tool_is_a_default() -> None:
    assert not tools.TOOLS["alertmanager"].default
    assert "alertmanager" not in tools.default_tools()
    assert set(tools.default_tools()) == set(tools.TOOLS) - {"alertmanager"}


def test_ensure_with_no_names_skips_optional_tools_and_builds_them_when_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built: list[str] = []

    def fake_build(tool: tools.Tool, *, force: bool = False) -> Path:
        built.append(tool.name)
        return tmp_path / tool.name

    monkeypatch.setattr(tools, "build", fake_build)
    monkeypatch.setattr(tools, "is_built", lambda tool: False)
    tools.ensure(log=lambda _: None)
    assert built == tools.default_tools() and "alertmanager" not in built
    built.clear()
    tools.ensure(["alertmanager"], log=lambda _: None)
    assert built == ["alertmanager"]


def test_the_wrapper_module_pins_the_version_the_table_names() -> None:
    am = tools.TOOLS["alertmanager"]
    go_mod = (am.wrapper_dir / "go.mod").read_text()
    assert f"{am.module} {am.version}" in go_mod
    for package in am.packages:
        assert package in go_mod  # a `tool` line, so `go build` of it is -mod=readonly clean


def test_placeholder_files_do_not_change_the_cache_directory_of_tools_without_them() -> None:
    # The hash of a tool without placeholders is what it was before the field existed: no rebuild.
    assert all(not t.placeholder_files for n, t in tools.TOOLS.items() if n != "alertmanager")
    assert tools.TOOLS["alertmanager"].placeholder_files
