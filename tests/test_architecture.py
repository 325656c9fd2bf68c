"""The layout keeps its promises: no import cycle, modules that say what they own (and are named
in docs/architecture.md's table), config above no stage, a CLI that starts without the heavy
libraries, and a registry whose every line resolves."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from digest import registry

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
HEAVY = ("apscheduler", "premailer", "cssutils", "bs4", "httpx")
STAGES = ("digest.sources", "digest.match", "digest.render", "digest.deliver", "digest.store")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def runtime_imports(name: str) -> set[str]:
    """The digest modules ``name`` imports when it runs: at module level and inside functions
    alike (a deferred import still closes a cycle; only ``if TYPE_CHECKING:`` blocks are left
    out). ``from package import name`` counts as an import of the submodule when there is one,
    else of the package itself."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                target = submodule if submodule in MODULES else node.module
                if target in MODULES:
                    found.add(target)
        pending.extend(ast.iter_child_nodes(node))
    found.discard(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [name])):
            return cycle
    return None


def test_no_import_cycle_inside_the_package() -> None:
    cycle = find_cycle({name: runtime_imports(name) for name in MODULES})
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_sees_a_cycle() -> None:
    graph = {name: runtime_imports(name) for name in MODULES}
    assert "digest.registry" in graph["digest.store"]  # the edges are really read
    # A registry importing a backend at module level would close store -> registry -> sqlite.
    graph["digest.registry"] = {"digest.store.sqlite"}
    cycle = ["digest.registry", "digest.store.sqlite", "digest.store", "digest.registry"]
    assert find_cycle(graph) == cycle


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_what_it_owns(name: str) -> None:
    # The old 400-line cap cut cohesive modules in two; a module owns one thing and says so in
    # its docstring's first line, and its size follows from that.
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text(encoding="utf-8")))
    first = (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
    assert len(first) >= 20, f"{name}: the first docstring line says what the module owns"


ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def table_rows() -> dict[str, str]:
    """The rows of docs/architecture.md's folder table, by each place they name."""
    rows: dict[str, str] = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `digest/"):
            place, owns = line.split(" | ", 1)
            for named in re.findall(r"`(digest/[\w/.]+)`", place):
                rows[named] = owns
    return rows


def named_in(rows: dict[str, str], path: Path) -> bool:
    """A module is named by its own row (``digest/x.py``) or in its folder's row (`` `x` ``,
    or a ``prefix_*`` family)."""
    relative = path.relative_to(PACKAGE.parent).as_posix()
    if relative in rows:
        return True
    folder = relative.rsplit("/", 1)[0] + "/"
    owns = rows.get(folder, "")
    stems = set(re.findall(r"`(\w+)\*?`", owns))
    families = re.findall(r"`(\w+_)\*`", owns)
    return path.stem in stems or any(path.stem.startswith(family) for family in families)


@pytest.mark.parametrize("path", sorted(MODULES.values()), ids=lambda p: p.name)
def test_every_module_is_named_in_the_architecture_table(path: Path) -> None:
    rows = table_rows()
    if path.name == "__init__.py" and path.parent != PACKAGE:
        assert path.parent.relative_to(PACKAGE.parent).as_posix() + "/" in rows
    else:
        assert named_in(rows, path), f"{path}: name it in docs/architecture.md's table"


def test_the_table_check_sees_a_missing_module() -> None:
    rows = table_rows()
    assert named_in(rows, PACKAGE / "store" / "readers.py")
    assert not named_in(rows, PACKAGE / "store" / "nothing_here.py")
    assert not named_in(rows, PACKAGE / "helpers.py")


@pytest.mark.parametrize(
    "name", ["digest.config", "digest.config_errors", "digest.config_sections", "digest.settings"]
)
def test_configuration_imports_no_stage(name: str) -> None:
    stages = {m for m in runtime_imports(name) if m.startswith(STAGES)}
    assert stages == set(), f"{name} imports {sorted(stages)}"


@pytest.mark.parametrize("seam", ["sources", "channels", "stores", "matchers"])
def test_every_registration_line_resolves(seam: str) -> None:
    table = registry.everything()[seam]
    for name in table:
        assert table.load(name) is not None


@pytest.mark.parametrize(
    "args",
    [["--help"], ["check"], ["seen", "list"], ["seen", "stats"]],
    ids=lambda args: " ".join(args),
)
def test_light_commands_import_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\n')
    probe = (
        "import sys\n"
        "from digest.cli import main\n"
        "try:\n"
        f"    status = main({['--config', str(config), *args]!r})\n"
        "except SystemExit as exit:\n"
        "    status = exit.code\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules), status)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last in ("LOADED [] 0", "LOADED [] None"), result.stdout + result.stderr


def test_the_probe_sees_a_heavy_import(tmp_path: Path) -> None:
    # The counterpart: the probe above would pass if nothing were ever imported at all.
    probe = "import sys, digest.sources.fetch; print([m for m in ('httpx',) if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.stdout.strip() == "['httpx']", result.stderr
