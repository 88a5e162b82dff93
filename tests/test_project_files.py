"""The project's own files agree with each other (README, CI, environment.yml, pyproject, notebooks)."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs: list[str]) -> dict[str, str]:
    out = {}
    for r in reqs:
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", r)
        out[m.group(1).lower().replace("_", "-")] = m.group(2).split("#")[0].strip()
    return out


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _names(pip) == wanted
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("go") for d in conda), "environment.yml must bring Go (it builds the sandbox)"
    for must in ("jupyterlab", "kubernetes", "boto3", "pandas", "ipywidgets"):
        assert must in wanted
    assert wanted["jupyterlab"] == ">=4.1"


def _readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {marker} -->\s*```(?:bash|sh)?\n(.+?)\n```", text, re.S)
    assert m, f"README.md has no code block after <!-- {marker} -->"
    return m.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    cmd = _readme_command("test-command")
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] in (cmd, f"exec {cmd}")


def test_readme_run_command_is_the_lab_script():
    assert _readme_command("run-command") == "./lab"
    assert (ROOT / "lab").stat().st_mode & 0o111


def test_committed_notebooks_have_no_outputs():
    for nb_path in sorted((ROOT / "notebooks").glob("**/*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, \
                    f"{nb_path.name} has outputs: strip them (jupyter nbconvert --clear-output --inplace)"


def test_readme_has_the_differences_table():
    text = (ROOT / "README.md").read_text()
    assert "## Differences from EKS" in text
    section = text.split("## Differences from EKS", 1)[1].split("\n## ", 1)[0]
    assert section.count("\n|") >= 6


def test_notebook_navigation_is_current():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "add_navigation.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, f"{r.stdout} — run `python tools/add_navigation.py`"


def test_every_notebook_starts_alike_and_has_a_plan():
    """Set-up with lab.start(), then the preflight cell; each notebook that creates something says what."""
    from helpers import target
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        code = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "code"]
        assert "lab.start()" in code[0], f"{nb_path.name}: the first code cell starts the lab"
        number = nb_path.name[:2]
        assert code[1].strip() == f'lab.preflight("{number}")' or f'lab.preflight("{number}")' in code[0], \
            f"{nb_path.name}: the preflight cell follows the set-up"
        if number != "00":
            assert target.PLAN.get(number), f"{nb_path.name}: helpers.target.PLAN says what it creates"


def test_the_package_keeps_its_lines_within_100_characters():
    long = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "helpers").rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if len(line) > 100]
    assert long == []


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_no_learner_visible_cell_holds_a_bare_assert():
    """What a cell demonstrates is said with checks.expect, which shows the result and its meaning."""
    found = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in sorted((ROOT / "notebooks").glob("**/*.ipynb"))
             for src in _code_cells(p) for line in src.splitlines() if re.match(r"\s*assert\b", line)]
    assert found == []


def test_every_exercise_is_in_its_lesson_and_proven_both_ways_in_its_solutions():
    """Each check in helpers.exercises is called in a lesson, and its solutions notebook expects ✖ from
    it before the solution and ✔ after (the notebook run then proves both)."""
    import inspect

    from helpers import exercises
    names = [n for n, f in inspect.getmembers(exercises, inspect.isfunction)
             if f.__module__ == exercises.__name__ and not n.startswith("_")]
    assert len(names) >= 7
    lessons = "\n".join(s for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) for s in _code_cells(p))
    for name in names:
        assert f"exercises.{name}(" in lessons, f"{name} is not asked in any lesson"
        number = inspect.getdoc(getattr(exercises, name)).split(":", 1)[0]
        solved = "\n".join(_code_cells(ROOT / "notebooks" / "solutions" / f"{number}_solutions.ipynb"))
        if name == "exec_quiz":   # a widget: its submit() answers are the check
            assert "holds=not before.ok" in solved and "holds=after.ok" in solved
            continue
        assert re.search(rf"before = exercises\.{name}\(.*\)\nchecks\.expect\(before, holds=not before\.ok", solved), name
        assert re.search(rf"after = exercises\.{name}\(.*\)\nchecks\.expect\(after, holds=after\.ok", solved), name


def test_every_lesson_reads_like_the_note():
    """About 40 cells a lesson; a sentence before every step (no two code cells side by side, the
    way handson-ml3's chapters read); code lines a learner can read without scrolling."""
    problems = []
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb_path.read_text())["cells"]
        if len(cells) > 44:
            problems.append(f"{nb_path.name}: {len(cells)} cells (about 40 is the size of a lesson)")
        for i in range(1, len(cells)):
            if cells[i]["cell_type"] == cells[i - 1]["cell_type"] == "code":
                first = "".join(cells[i]["source"]).splitlines()[0]
                problems.append(f"{nb_path.name} cell {i} (`{first}`): no sentence before this step")
        for i, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            for line in "".join(cell["source"]).splitlines():
                if len(line) > 100 and not re.match(r"\s*((\w+ = )?%|[\w.\[\]\"-]+:|-\s)", line):
                    problems.append(f"{nb_path.name} cell {i}: a line of {len(line)} characters")
    assert problems == [], "\n".join(problems)
