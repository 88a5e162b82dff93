"""The package's boundaries (issue #11), checked on every import statement, function-level ones too.

- helpers.facts (constants), helpers.accesspolicies (what EKS's access policies allow) and
  helpers.shell (the one program runner) import nothing of the project: anything may use them.
- helpers.sandbox (the sandbox's parts) never imports the notebook-facing modules; inside it,
  aws/ and eks/ never import each other (what both need is in sandbox/common).
- notebook-facing modules reach the sandbox only through the target (helpers.targets.sandbox);
  the CLI (helpers.cli) and the classroom (helpers.classroom: it runs a hub in front of sandboxes)
  drive the sandbox directly too; no notebook-facing module imports the classroom. helpers.targets is imported by
  helpers.target alone.
- no module of the package uses another module's private (underscore) name (gettext's `_`, from
  helpers.language, is public by convention).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "helpers"
LEAVES = ("helpers.facts", "helpers.shell", "helpers.accesspolicies", "helpers.language")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, names imported from it, line) for every import in PATH."""
    tree = ast.parse(path.read_text())
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [a.name for a in node.names]
            found.append((mod, names, node.lineno))
            # `from . import x` imports the module helpers.x
            found += [(f"{mod}.{n}", [], node.lineno) for n in names if (PKG.parent / (mod + "." + n).replace(
                ".", "/")).with_suffix(".py").exists() or (PKG.parent / (mod + "." + n).replace(".", "/")).is_dir()]
    return found


def _private_attributes(path: Path) -> list[tuple[str, str, int]]:
    """(module, attribute, line) for `mod._name` where `mod` was imported from the project."""
    tree = ast.parse(path.read_text())
    bound: dict[str, str] = {}
    for mod, names, _ in _imports(path):
        if _is(mod, "helpers"):
            for n in names:
                bound[n] = f"{mod}.{n}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _is(a.name, "helpers"):
                    bound[a.asname or a.name.split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.asname and a.name in bound:
                    bound[a.asname] = bound.pop(a.name)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound \
                and node.attr.startswith("_") and not node.attr.startswith("__") \
                and not node.attr.startswith("_repr_"):
            found.append((bound[node.value.id], node.attr, node.lineno))
    return found


def _all_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _is(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def _violations() -> list[str]:
    bad = []
    for name, path in sorted(_all_modules().items()):
        for mod, names, line in _imports(path):
            if not _is(mod, "helpers"):
                continue
            where = f"{path.relative_to(ROOT)}:{line} imports {mod}"
            if name in LEAVES:
                bad.append(f"{where}: {name} imports nothing of the project")
            if _is(name, "helpers.sandbox") and not (_is(mod, "helpers.sandbox") or mod in LEAVES
                                                     or mod == "helpers"):
                bad.append(f"{where}: the sandbox does not import notebook-facing modules")
            if _is(name, "helpers.sandbox.aws") and _is(mod, "helpers.sandbox.eks") or \
                    _is(name, "helpers.sandbox.eks") and _is(mod, "helpers.sandbox.aws"):
                bad.append(f"{where}: aws/ and eks/ do not import each other (use sandbox/common)")
            driver = name == "helpers.cli" or _is(name, "helpers.classroom")
            if _is(mod, "helpers.classroom") and not driver:
                bad.append(f"{where}: only the CLI and the classroom itself import the classroom")
            if not _is(name, "helpers.sandbox") and not _is(name, "helpers.targets.sandbox") and \
                    not driver and _is(mod, "helpers.sandbox") and mod != "helpers.sandbox":
                bad.append(f"{where}: notebook-facing code reaches the sandbox through helpers.target")
            if not _is(name, "helpers.sandbox") and not _is(name, "helpers.targets") and not driver \
                    and mod == "helpers.sandbox":
                bad.append(f"{where}: notebook-facing code reaches the sandbox through helpers.target")
            if _is(mod, "helpers.targets") and not (name == "helpers.target" or _is(name, "helpers.targets")):
                bad.append(f"{where}: only helpers.target chooses a target implementation")
            private = [n for n in names if n.startswith("_") and not n.startswith("__") and n != "_"]
            if private and mod != name:
                bad.append(f"{where}: uses the private name(s) {private} of another module")
        for mod, attr, line in _private_attributes(path):
            bad.append(f"{path.relative_to(ROOT)}:{line} uses {mod}.{attr}, a private name of another module")
    return bad


def test_no_import_crosses_a_boundary_the_wrong_way():
    assert _violations() == []


def test_programs_are_run_in_one_place():
    """kubectl, aws and a pod's commands go through helpers.shell (helpers.commands on top of it);
    only the process supervisor, the Go build, the classroom's installer (it streams `lab setup`'s
    progress), its check (it runs a hub) and the warm `aws`'s client (standard library only, so that
    it starts in milliseconds; it starts its server) start programs of their own."""
    import re
    allowed = {"helpers/shell.py", "helpers/sandbox/procs.py", "helpers/sandbox/gobuild.py",
               "helpers/classroom/install.py", "helpers/classroom/check.py", "helpers/warm/client.py"}
    found = [str(p.relative_to(ROOT)) for p in sorted(PKG.rglob("*.py"))
             if re.search(r"subprocess\.(run|Popen|call|check_output|check_call)\(", p.read_text())]
    assert sorted(set(found) - allowed) == []


def test_the_check_sees_a_crossing(tmp_path, monkeypatch):
    """The rules above are not vacuous: a sandbox module importing the notebook helpers is caught."""
    bad = PKG / "sandbox" / "_boundary_probe.py"
    bad.write_text("from .. import lab\nfrom .aws.account import _secret\nfrom . import procs\nprocs._reap(1)\n")
    try:
        found = _violations()
    finally:
        bad.unlink()
    assert any("_boundary_probe.py:1 imports helpers.lab" in v for v in found)
    assert any("private name(s) ['_secret']" in v for v in found)
    assert any("uses helpers.sandbox.procs._reap" in v for v in found)
