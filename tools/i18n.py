"""The Korean edition (and any other): gettext catalogs of the notebooks' markdown, and the translated
notebooks built from them, the way Sphinx keeps a translated manual (`make gettext`, then msgmerge).

    python tools/i18n.py update [--lang ko]   catalogs follow the English: new cells added untranslated,
                                              changed ones marked fuzzy with their previous English
    python tools/i18n.py build  [--lang ko]   notebooks/<lang>/… from each English notebook + its catalog
    python tools/i18n.py check  [--lang ko]   exit 1 if a catalog lags the English (an entry missing,
                                              untranslated, fuzzy or left over) or a built notebook is stale

One catalog per notebook, notebooks/locale/<lang>/LC_MESSAGES/<notebook>.po (solutions/ likewise); an
entry is one markdown cell: msgctxt its cell id, msgid its English. The helpers' own messages (what
a 401 means, exercise hints, preflight, table headers: every `_("…")` and `N_("…")` in helpers/,
the sandbox and classroom aside) are one more catalog, helpers/locale/<lang>/LC_MESSAGES/eks_lab.po,
extracted and merged by Babel (pybabel extract + update), compiled to eks_lab.mo by `build`. Code cells are copied unchanged
(what the tools print stays verbatim, as on a real cluster); the prev/next navigation is written in
the edition's language. Only notebooks with a catalog have an edition (`update --new NOTEBOOK`
starts one).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import io
import string

import nbformat
import polib
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
HELPERS = ROOT / "helpers"
DOMAIN = "eks_lab"
NOT_FOR_LEARNERS = {"sandbox", "classroom", "locale", "__pycache__"}
NAV_TAG = "navigation"
CONTENTS = {"ko": "목차"}
README = {"ko": "../../README.md#한국어판"}


def catalog_path(notebook: Path, lang: str) -> Path:
    rel = notebook.relative_to(NOTEBOOKS).with_suffix(".po")
    return NOTEBOOKS / "locale" / lang / "LC_MESSAGES" / rel


def edition_path(notebook: Path, lang: str) -> Path:
    return NOTEBOOKS / lang / notebook.relative_to(NOTEBOOKS)


def english_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted(
        (NOTEBOOKS / "solutions").glob("[0-9][0-9]_*.ipynb"))


def translated(lang: str) -> list[Path]:
    return [p for p in english_notebooks() if catalog_path(p, lang).exists()]


def _cells(notebook: Path) -> list:
    nb = nbformat.read(notebook, as_version=4)
    return [c for c in nb.cells if c.cell_type == "markdown" and NAV_TAG not in c.metadata.get("tags", [])]


def merged(notebook: Path, lang: str, old: polib.POFile | None = None) -> polib.POFile:
    """The catalog NOTEBOOK's English asks for, keeping OLD's translations: an entry whose cell
    still says the same keeps its msgstr; one whose English changed keeps it marked fuzzy, with the
    English it translated as previous_msgid (what msgmerge does)."""
    po = polib.POFile(wrapwidth=0)
    po.metadata = {
        "Project-Id-Version": "eks-security-lab",
        "Language": lang,
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
    }
    by_ctxt = {e.msgctxt: e for e in old} if old else {}
    by_id = {e.msgid: e for e in old if e.msgstr and "fuzzy" not in e.flags} if old else {}
    for cell in _cells(notebook):
        entry = polib.POEntry(msgctxt=cell.id, msgid=cell.source, msgstr="",
                              occurrences=[(str(notebook.relative_to(NOTEBOOKS)), cell.id)])
        was = by_ctxt.get(cell.id)
        if was is not None and was.msgid == cell.source:
            entry.msgstr, entry.flags = was.msgstr, list(was.flags)
            entry.previous_msgid = was.previous_msgid
        elif was is not None and was.msgstr:
            entry.msgstr, entry.flags = was.msgstr, ["fuzzy"]
            entry.previous_msgid = was.previous_msgid if "fuzzy" in was.flags else was.msgid
        elif cell.source in by_id:  # the same text in a re-made cell
            entry.msgstr = by_id[cell.source].msgstr
        po.append(entry)
    return po


def problems(notebook: Path, lang: str) -> list[str]:
    """What keeps NOTEBOOK's edition from being current."""
    path = catalog_path(notebook, lang)
    po = polib.pofile(str(path), wrapwidth=0)
    want = merged(notebook, lang, po)
    name = notebook.relative_to(NOTEBOOKS)
    found = []
    have = {(e.msgctxt, e.msgid) for e in po}
    for e in want:
        if (e.msgctxt, e.msgid) not in have:
            found.append(f"{name} cell {e.msgctxt}: the English changed or is new (run update)")
        elif "fuzzy" in e.flags:
            found.append(f"{name} cell {e.msgctxt}: fuzzy (its English changed; review the translation)")
        elif not e.msgstr.strip():
            found.append(f"{name} cell {e.msgctxt}: not translated")
    gone = have - {(e.msgctxt, e.msgid) for e in want}
    found += [f"{name} cell {c}: no longer in the English notebook (run update)" for c, _ in gone]
    if not found:
        built = edition_path(notebook, lang)
        if not built.exists() or built.read_text() != render(notebook, lang):
            found.append(f"{name}: notebooks/{lang}/{name} is not built from the catalog (run build)")
    return found


def _title(cells) -> str:
    return cells[0].source.splitlines()[0].lstrip("# ").strip()


def navigation(notebook: Path, lang: str) -> str:
    """Prev/next among the lessons (or solutions) of this edition; a neighbour not translated yet is
    linked in English."""
    group = [p for p in english_notebooks() if p.parent == notebook.parent]
    i = group.index(notebook)
    to = lambda p: (p.name, _title(_translated_cells(p, lang))) if catalog_path(p, lang).exists() \
        else (f"../{p.name}" if p.parent == NOTEBOOKS else f"../../solutions/{p.name}", _title(_cells(p)))  # noqa: E731
    parts = []
    if i > 0:
        link, title = to(group[i - 1])
        parts.append(f"◀ [{title}]({link})")
    parts.append(f"[{CONTENTS.get(lang, 'contents')}]({README.get(lang, '../../README.md')})")
    if i + 1 < len(group):
        link, title = to(group[i + 1])
        parts.append(f"[{title}]({link}) ▶")
    return " | ".join(parts)


def _translated_cells(notebook: Path, lang: str) -> list:
    po = {e.msgctxt: e for e in polib.pofile(str(catalog_path(notebook, lang)), wrapwidth=0)}
    cells = _cells(notebook)
    for c in cells:
        e = po.get(c.id)
        c.source = e.msgstr if e is not None and e.msgstr and e.msgid == c.source else c.source
    return cells


def render(notebook: Path, lang: str) -> str:
    nb = nbformat.read(notebook, as_version=4)
    po = {e.msgctxt: e for e in polib.pofile(str(catalog_path(notebook, lang)), wrapwidth=0)}
    nav = navigation(notebook, lang)
    for c in nb.cells:
        if c.cell_type != "markdown":
            continue
        if NAV_TAG in c.metadata.get("tags", []):
            c.source = nav
            continue
        e = po.get(c.id)
        if e is None or not e.msgstr or "fuzzy" in e.flags or e.msgid != c.source:
            raise SystemExit(f"{notebook.name} cell {c.id}: no current translation (run update, translate)")
        c.source = e.msgstr
    nb.metadata["eks_lab"] = {"lang": lang, "translated_from": notebook.name}
    return nbformat.writes(nb) + "\n"


# --- the helpers' messages ---------------------------------------------------------------------------


def helper_sources() -> list[Path]:
    """The modules a notebook calls (the sandbox's processes and the classroom's tools speak to
    the instructor's terminal, in English)."""
    return sorted(p for p in HELPERS.rglob("*.py")
                  if not NOT_FOR_LEARNERS & set(p.relative_to(HELPERS).parts[:-1]))


def helpers_template() -> Catalog:
    """What `pybabel extract -k _ -k N_` finds in the helpers: every message a learner may see."""
    template = Catalog(project="eks-security-lab", fuzzy=False)
    for path in helper_sources():
        for _line, message, _comments, _context in extract_from_file(
                "python", path, keywords={"_": None, "N_": None}):
            template.add(message, locations=[(str(path.relative_to(ROOT)), None)])
    return template


def helpers_catalog_path(lang: str, suffix: str = ".po") -> Path:
    return HELPERS / "locale" / lang / "LC_MESSAGES" / (DOMAIN + suffix)


def read_helpers(lang: str) -> Catalog:
    with open(helpers_catalog_path(lang), "rb") as f:
        return read_po(f, locale=lang)


def update_helpers(lang: str) -> None:
    """`pybabel update`: a changed message keeps its old translation marked fuzzy (with the English
    it translated as previous msgid), a new one comes untranslated, a removed one goes."""
    path = helpers_catalog_path(lang)
    catalog = read_helpers(lang) if path.exists() else Catalog(
        locale=lang, project="eks-security-lab", fuzzy=False)
    catalog.update(helpers_template(), update_creation_date=False)
    save_helpers(lang, catalog)


def save_helpers(lang: str, catalog: Catalog) -> None:
    path = helpers_catalog_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        write_po(f, catalog, width=0, ignore_obsolete=True, include_previous=True, include_lineno=False)


def compiled_helpers(lang: str) -> bytes:
    out = io.BytesIO()
    write_mo(out, read_helpers(lang), use_fuzzy=False)
    return out.getvalue()


def _fields(text: str) -> list[str]:
    return sorted(f"{name}!{conv}" for _lit, name, _spec, conv in string.Formatter().parse(text) if name is not None)


def helpers_problems(lang: str) -> list[str]:
    """What keeps the helpers from speaking LANG: the same cases as a notebook's catalog, a
    translation whose {placeholders} differ from the English's (the message would fail when
    formatted), and an .mo not compiled from the .po."""
    if not helpers_catalog_path(lang).exists():
        return [f"helpers/locale/{lang}: no catalog of the helpers' messages (run update)"]
    catalog, wanted = read_helpers(lang), {m.id for m in helpers_template() if m.id}
    have = {m.id for m in catalog if m.id}
    found = [f"helpers {m!r}: the English changed or is new (run update)" for m in sorted(wanted - have)]
    for m in catalog:
        if not m.id:
            continue
        if m.id not in wanted:
            found.append(f"helpers {m.id!r}: no longer in the helpers (run update)")
        elif m.fuzzy:
            found.append(f"helpers {m.id!r}: fuzzy (its English changed; review the translation)")
        elif not m.string:
            found.append(f"helpers {m.id!r}: not translated")
        elif _fields(m.id) != _fields(m.string):
            found.append(f"helpers {m.id!r}: its placeholders {_fields(m.string)} are not the English's {_fields(m.id)}")
    if not found:
        mo = helpers_catalog_path(lang, ".mo")
        if not mo.exists() or mo.read_bytes() != compiled_helpers(lang):
            found.append(f"helpers/locale/{lang}: {DOMAIN}.mo is not compiled from {DOMAIN}.po (run build)")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("update", "build", "check"))
    ap.add_argument("--lang", default="ko")
    ap.add_argument("--new", action="append", default=[], help="start a catalog for this notebook")
    args = ap.parse_args(argv)
    for name in args.new:
        p = (NOTEBOOKS / name).resolve()
        catalog_path(p, args.lang).parent.mkdir(parents=True, exist_ok=True)
        if not catalog_path(p, args.lang).exists():
            merged(p, args.lang).save(str(catalog_path(p, args.lang)))
    books = translated(args.lang)
    if args.action == "update":
        for p in books:
            path = catalog_path(p, args.lang)
            merged(p, args.lang, polib.pofile(str(path), wrapwidth=0)).save(str(path))
        update_helpers(args.lang)
        print(f"{len(books)} catalogs updated, and the helpers' messages")
    elif args.action == "build":
        for p in books:
            out = edition_path(p, args.lang)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render(p, args.lang))
        untranslated = [x for x in helpers_problems(args.lang) if "(run build)" not in x]
        if untranslated:
            raise SystemExit("\n".join(untranslated))
        helpers_catalog_path(args.lang, ".mo").write_bytes(compiled_helpers(args.lang))
        print(f"{len(books)} notebooks built in notebooks/{args.lang}/, and {DOMAIN}.mo")
    else:
        found = [x for p in books for x in problems(p, args.lang)] + helpers_problems(args.lang)
        print("\n".join(found) or f"{len(books)} catalogs and the helpers' current, every entry translated")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
