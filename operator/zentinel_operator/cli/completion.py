"""``completion bash|zsh|fish``: a shell completion script generated from the argparse parser, so it
names every subcommand and option the program has. bash and zsh come from shtab; shtab has no fish
back end, so the fish script (plain ``complete`` lines) is generated here."""

from __future__ import annotations

import argparse
import shlex

SHELLS = ("bash", "zsh", "fish")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]


def _fish_option(prog: str, condition: str, action: argparse.Action) -> str:
    parts = ["complete", "-c", prog, "-n", condition]
    for opt in action.option_strings:
        if opt.startswith("--"):
            parts += ["-l", opt[2:]]
        elif len(opt) == 2:
            parts += ["-s", opt[1:]]
    if action.nargs != 0:
        parts.append("-r")
        if action.choices:
            parts += ["-f", "-a", " ".join(str(c) for c in action.choices)]
    if action.help:
        parts += ["-d", action.help.split(";")[0][:80]]
    return shlex.join(parts)


def fish(parser: argparse.ArgumentParser, prog: str) -> str:
    """``complete`` lines for fish: the subcommands first, then each one's options and sub-subcommands."""
    subs = _subparsers(parser)
    helps = _helps(parser)
    names = " ".join(subs)
    lines = [f"# fish completion for {prog}: {prog} completion fish | source", f"complete -c {prog} -f"]
    top = f"not __fish_seen_subcommand_from {names}"
    lines.append(shlex.join(["complete", "-c", prog, "-n", top, "-f", "-a", names]))
    lines += [shlex.join(["complete", "-c", prog, "-n", top, "-f", "-a", n, "-d", helps.get(n, "")[:80]]) for n in subs]
    lines += [_fish_option(prog, top, a) for a in _options(parser)]
    for name, sub in subs.items():
        seen = f"__fish_seen_subcommand_from {name}"
        lines += [_fish_option(prog, seen, a) for a in _options(sub)]
        nested = _subparsers(sub)
        if nested:
            lines.append(shlex.join(["complete", "-c", prog, "-n", seen, "-f", "-a", " ".join(nested)]))
        for action in sub._actions:
            if not action.option_strings and action.choices and not isinstance(action, argparse._SubParsersAction):
                choices = " ".join(str(c) for c in action.choices)
                lines.append(shlex.join(["complete", "-c", prog, "-n", seen, "-f", "-a", choices]))
    return "\n".join(lines) + "\n"


def script(parser: argparse.ArgumentParser, shell: str, prog: str) -> str:
    """The completion script for ``shell``, for the program called ``prog``."""
    if shell == "fish":
        return fish(parser, prog)
    import shtab

    text: str = shtab.complete(parser, shell=shell)
    return text if text.endswith("\n") else text + "\n"
