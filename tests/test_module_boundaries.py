"""The server package keeps its module boundaries (docs/design.md, "Modules"): no backend module
depends on another backend module, directly or through the shared modules it imports, and no
module grows past what one reader takes in at once. Read from the source with ``ast``: nothing
is imported to check it, so a sideways import cannot hide behind import order or a cache."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from parallelworks_lab.providers.activate_backend import ActivateBackend
from parallelworks_lab.service import DEFAULT_BACKENDS, load_backend_class

PACKAGE = Path(__file__).resolve().parents[1] / "parallelworks_lab"
MAX_LINES = 550


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    )


def imports_of(name: str, path: Path, known: set[str], in_functions: bool = True) -> set[str]:
    """The package's modules this module imports (not in ``if TYPE_CHECKING:`` blocks, which
    never run; inside functions only when ``in_functions``: those run when called)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            return
        if not in_functions and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import local_usage`` imports a module, not a name.
            found.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found & known


def backend_modules(modules: dict[str, Path]) -> set[str]:
    """Modules that define a cluster kind: a class setting ``kind`` in its body."""
    found = set()
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for statement in node.body:
                target = (
                    statement.target
                    if isinstance(statement, ast.AnnAssign) and statement.value is not None
                    else statement.targets[0]
                    if isinstance(statement, ast.Assign) and len(statement.targets) == 1
                    else None
                )
                if isinstance(target, ast.Name) and target.id == "kind":
                    found.add(name)
    return found


@functools.cache
def import_graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per module: everything it imports, and what loading it imports (its top level)."""
    modules = all_modules()
    known = set(modules)
    every = {name: imports_of(name, path, known) - {name} for name, path in modules.items()}
    loads = {
        name: imports_of(name, path, known, in_functions=False) - {name}
        for name, path in modules.items()
    }
    return every, loads


def reachable(start: str) -> dict[str, list[str]]:
    """Every module ``start`` uses: what it imports anywhere, and what those load in turn,
    each with one import chain that leads to it."""
    every, loads = import_graphs()
    chains = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in sorted(every[current] if current == start else loads[current]):
            if target not in chains:
                chains[target] = [*chains[current], target]
                todo.append(target)
    return chains


def test_the_guard_sees_every_backend_kind():
    """Else a backend defined some other way would slip past the import check below."""
    found = backend_modules(all_modules())
    registered = {load_backend_class(path).__module__ for path in DEFAULT_BACKENDS.values()}
    assert registered | {ActivateBackend.__module__} <= found, found
    assert "parallelworks_lab.backends.cli" not in found  # shared bases name no kind
    assert "parallelworks_lab.backends.slurm_cli" not in found


def test_no_backend_module_depends_on_another():
    backends = backend_modules(all_modules())
    problems = []
    for backend in sorted(backends):
        for other, chain in reachable(backend).items():
            if other in backends and other != backend:
                problems.append(" -> ".join(chain))
    assert not problems, "backend modules import other backend modules:\n" + "\n".join(problems)


def test_imports_go_one_way():
    """handlers -> service -> poller/store -> backends -> transports, never back up."""
    service_side = {
        f"parallelworks_lab.{name}"
        for name in ("app", "handlers", "service", "service_views", "service_actions")
    } | {"parallelworks_lab.poller", "parallelworks_lab.store"}
    scheduler_side = ("parallelworks_lab.backends", "parallelworks_lab.providers")
    problems = []
    for name in sorted(all_modules()):
        if name.startswith(scheduler_side):
            above = service_side
        elif name.startswith("parallelworks_lab.transports"):
            above = service_side | {m for m in all_modules() if m.startswith(scheduler_side)}
        else:
            continue
        problems += [
            " -> ".join(chain) for other, chain in reachable(name).items() if other in above
        ]
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_the_import_reader_finds_sideways_imports(tmp_path):
    """The check above can fail: the reader resolves the relative imports backends use."""
    backends = tmp_path / "parallelworks_lab" / "backends"
    backends.mkdir(parents=True)
    source = backends / "sge.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from .slurm import aggregate\n"
        "from . import local\n"
        "from ..providers.activate_backend import ActivateBackend\n"
        "if TYPE_CHECKING:\n"
        "    from .slurmrest import SlurmRestBackend\n"
    )
    known = {
        "parallelworks_lab.backends.slurm",
        "parallelworks_lab.backends.local",
        "parallelworks_lab.backends.slurmrest",
        "parallelworks_lab.providers.activate_backend",
    }
    assert imports_of("parallelworks_lab.backends.sge", source, known) == known - {
        "parallelworks_lab.backends.slurmrest"
    }


def test_no_module_is_over_the_line_limit():
    too_long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(PACKAGE.parent))
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            too_long[relative] = lines
    assert not too_long, f"split these along their concepts (at most {MAX_LINES} lines): {too_long}"
