"""The house's layout holds: swiftdeploy's packages import one way, in the data flow's order, and no modules
import each other in a circle (in src/ or tasks/). Imports made inside functions count too."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "swiftdeploy"

# each package may import the ones before it; every package may import the modules beside them (KERNEL)
LAYERS = ["model", "render", "engine", "evidence", "judge", "converge", "present", "report"]
KERNEL = {"errors", "files", "commands", "secrets", "certificates", "state"}


def module_name(path: Path, root: Path, prefix: str) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((prefix, *parts)) if prefix else ".".join(parts)


def imports_of(path: Path, module: str, is_package: bool) -> set[str]:
    """The dotted modules (or module.name) a file imports, relative imports resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def graph(root: Path, prefix: str) -> dict[str, set[str]]:
    """module -> the modules of the same tree it imports."""
    files = {module_name(p, root, prefix): p for p in root.rglob("*.py")}
    edges = {}
    for module, path in files.items():
        named = imports_of(path, module, path.name == "__init__.py")
        edges[module] = {name for name in named if name in files and name != module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """swiftdeploy.judge.gates -> judge; swiftdeploy.errors -> kernel; swiftdeploy -> swiftdeploy."""
    parts = module.split(".")
    if len(parts) == 1:
        return "swiftdeploy"
    return "kernel" if len(parts) == 2 and parts[1] in KERNEL else parts[1]


def test_packages_import_only_those_before_them_in_the_data_flow():
    edges = graph(SRC, "swiftdeploy")
    assert {package_of(m) for m in edges} - {"kernel", "swiftdeploy"} == set(LAYERS)
    wrong = []
    for module, targets in sorted(edges.items()):
        here = package_of(module)
        if module == "swiftdeploy":
            continue
        for target in sorted(targets):
            there = package_of(target)
            if there in (here, "kernel", "swiftdeploy"):  # `from .. import x` names the package, then x
                continue
            if here == "kernel" or LAYERS.index(there) > LAYERS.index(here):
                wrong.append(f"{module} -> {target}")
    assert wrong == [], f"imports against the layers {LAYERS}: {wrong}"


def test_the_modules_beside_the_packages_are_the_few_every_package_shares():
    beside = {p.stem for p in SRC.glob("*.py")} - {"__init__"}
    assert beside == KERNEL and len(beside) <= 12


def test_no_import_circle_in_the_library_or_the_task_creators():
    assert cycles(graph(SRC, "swiftdeploy")) == []
    assert cycles(graph(ROOT / "tasks", "tasks")) == []


def test_the_circle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
