"""Command line: a command's parameters, parsed once into `Options`; `make help`; the check before the first setup.

`make all EPOCHS=30` gives EPOCHS. Make keeps the variables of its command line
in MAKEFLAGS exactly as typed, so the pipeline reads them from there
(`given_on_make_command_line`) and Make never expands them (`$`, `$(shell ...)`
stay characters) nor puts them in front of a shell. Each value is parsed once
(`parse_options`), and the run and the steps read the one `Options`. Variables
exported in the shell are not parameters: one line names any that a command
ignores. The three that describe the machine rather than the run (VENV, GPU,
DASK_SCHEDULER_ADDRESS) are read from the environment when the command line
does not give them, and one line says so.

    python3 -m digits.pipeline.commandline help   # needs only Python: make help works before setup
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from digits.parameters import (
    GROUP_TITLES,
    PARAMETERS_LIST,
    RUN_PARAMETERS,
    as_typed,
    parse_list,
    parse_parameters,
    quoted,
)


def command_line_variables(makeflags: str) -> dict[str, str]:
    """The variables of make's command line, as typed, from MAKEFLAGS (`... -- NAME=value NAME=value`).

    Make escapes spaces and backslashes in MAKEFLAGS with a backslash and doubles `$`.
    """
    words, word, index, escaped_space = [], [], 0, False
    while index < len(makeflags):
        character = makeflags[index]
        if character == "\\" and index + 1 < len(makeflags):
            word.append(makeflags[index + 1])
            index += 2
            escaped_space = True
            continue
        if character == "$" and makeflags[index + 1:index + 2] == "$":
            word.append("$")
            index += 2
            continue
        if character == " ":
            if word or escaped_space:
                words.append("".join(word))
            word, escaped_space = [], False
        else:
            word.append(character)
        index += 1
    if word or escaped_space:
        words.append("".join(word))
    if "--" not in words:
        return {}
    variables = {}
    for assignment in words[words.index("--") + 1:]:
        name, _, value = assignment.partition("=")
        variables[name.rstrip(":+?!")] = value
    return variables


def make_variables(environment: Mapping[str, str]) -> dict[str, str]:
    """Every variable of make's command line, as typed (none when not run by make)."""
    return command_line_variables(environment.get("MAKEFLAGS", ""))


def given_on_make_command_line(environment: Mapping[str, str]) -> dict[str, str]:
    """The parameters given on make's command line, by their notebook names; ValueError for an unknown name."""
    return given_as_variables(make_variables(environment))


def given_as_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """NAME=value pairs as parameters by their notebook names; ValueError naming an unknown variable."""
    known = {parameter.variable: parameter.name for parameter in PARAMETERS_LIST}
    unknown = [name for name in variables if name not in known]
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0][:40]}={quoted(variables[unknown[0]])}: "
                         f"`make help` lists the parameters ({', '.join(known)})")
    return {known[name]: value for name, value in variables.items()}


def ignored_in_environment(environment: Mapping[str, str], given: Mapping[str, Any]) -> list[str]:
    """NAME=value of the parameters exported in the shell but not given on the command line (they are ignored)."""
    return [f"{parameter.variable}={as_typed(environment[parameter.variable])}" for parameter in PARAMETERS_LIST
            if not parameter.from_environment and parameter.variable in environment and parameter.name not in given]


def taken_from_environment(environment: Mapping[str, str], given: Mapping[str, Any]) -> dict[str, str]:
    """The parameters that describe the machine (VENV, GPU, DASK_SCHEDULER_ADDRESS) exported in the shell and not
    given on the command line, by their notebook names: they are used."""
    return {parameter.name: environment[parameter.variable] for parameter in PARAMETERS_LIST
            if parameter.from_environment and parameter.variable in environment and parameter.name not in given}


def using_line(name: str, value: str) -> str:
    """The line that says a parameter was taken from the environment: whole, since it parsed (a path on one line,
    an address); quoted if it holds anything unprintable."""
    return f"using {name.upper()}={value if value.isprintable() else quoted(value)} from the environment"


# --- Parsed once -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """A command's parameters, each value parsed once: what was typed, and every parameter's value (its default
    when not given). Where run parameters are comma lists (make sweep, make runs), `lists` holds their values."""

    typed: Mapping[str, str]  # the parameters given, by their notebook names, exactly as typed
    values: Mapping[str, Any]  # every parameter, parsed (the default where not given)
    lists: Mapping[str, list[Any]] = field(default_factory=dict)  # run parameters' comma lists, each value parsed
    from_environment: frozenset[str] = frozenset()  # those of `typed` taken from the environment

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def given(self, name: str) -> bool:
        """True when the parameter was given on the command line."""
        return name in self.typed

    @property
    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the comma lists' values, in order (one empty combination without lists)."""
        return [dict(zip(self.lists, values)) for values in itertools.product(*self.lists.values())]

    @property
    def run_values(self) -> dict[str, Any]:
        """The run parameters, parsed (the defaults where not given)."""
        return {parameter.name: self.values[parameter.name] for parameter in RUN_PARAMETERS}


def parse_options(typed: Mapping[str, str], lists: bool = False,
                  environment: Mapping[str, str] | None = None) -> Options:
    """Parse the given parameters once, and those `taken_from_environment` of `environment`; with `lists`, the run
    parameters are comma lists (make sweep, make runs) whose combinations make the grid. ValueError naming the first bad value
    (and saying when it came from the environment)."""
    exported = taken_from_environment(environment or {}, typed)
    listed = {p.name: parse_list(p, typed[p.name]) for p in RUN_PARAMETERS if lists and p.name in typed}
    values = {p.name: p.parse(p.default) for p in PARAMETERS_LIST}
    values |= parse_parameters(**{name: value for name, value in typed.items() if name not in listed})
    for name, value in exported.items():
        try:
            values[name] = parse_parameters(**{name: value})[name]
        except ValueError as error:
            raise ValueError(f"{error} (from the environment)") from None
    return Options({**exported, **typed}, values, listed, frozenset(exported))


def check_command_line(environment: Mapping[str, str]) -> Options:
    """Parse the project's parameters on make's command line, comma lists too, before any work (ValueError if bad).

    Only the project's parameters: other variables of make's command line (PYTEST_ADDOPTS=... for `make test`) are
    Make's own business.
    """
    known = {parameter.variable for parameter in PARAMETERS_LIST}
    variables = make_variables(environment)
    return parse_options(given_as_variables({name: value for name, value in variables.items() if name in known}),
                         lists=True, environment=environment)


# --- Help -----------------------------------------------------------------------------------------------------


def help_text() -> str:
    """Every parameter with its default and meaning, by group, for `make help`."""
    lines = []
    for group, title in GROUP_TITLES.items():
        lines.append(f"{title}:")
        for parameter in (p for p in PARAMETERS_LIST if p.group == group):
            lines.append(f"  {parameter.variable + '=' + parameter.default_text:<26} {parameter.description}")
    return "\n".join(lines)


def main(arguments: list[str]) -> int:
    """`help`: list the parameters with their defaults."""
    if arguments != ["help"]:
        print("usage: python -m digits.pipeline.commandline help", file=sys.stderr)
        return 2
    print(help_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
