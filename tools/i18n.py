"""The Korean edition (and any other): gettext catalogs of the notebooks' markdown, and the translated
notebooks built from them, the way Sphinx keeps a translated manual (`make gettext`, then msgmerge).

    python tools/i18n.py update [--lang ko]   catalogs follow the English: new cells added untranslated,
                                              changed ones marked fuzzy with their previous English
    python tools/i18n.py build  [--lang ko]   notebooks/<lang>/… from each English notebook + its catalog
    python tools/i18n.py check  [--lang ko]   exit 1 if a catalog lags the English (an entry missing,
                                              untranslated, fuzzy or left over) or a built notebook is stale

One catalog per notebook, notebooks/locale/<lang>/LC_MESSAGES/<notebook>.po (solutions/ likewise); an
entry is one markdown cell: msgctxt its cell id, msgid its English. Code cells are copied unchanged
(what the tools print stays verbatim, as on a real cluster); the prev/next navigation is written in
the edition's language. Only notebooks with a catalog have an edition (`update --new NOTEBOOK`
starts one).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import polib

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
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
        print(f"{len(books)} catalogs updated")
    elif args.action == "build":
        for p in books:
            out = edition_path(p, args.lang)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render(p, args.lang))
        print(f"{len(books)} notebooks built in notebooks/{args.lang}/")
    else:
        found = [x for p in books for x in problems(p, args.lang)]
        print("\n".join(found) or f"{len(books)} catalogs current, every entry translated")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
