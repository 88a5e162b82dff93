"""The Korean edition (issue #18): gettext catalogs of the notebooks' markdown, the notebooks built
from them, and the checks that keep the two languages in step: an English cell that changes, or a
new one, makes its edition fail until it is translated again (tools/i18n.py check); the glossary's
words are used; code cells are the English ones, unchanged."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import polib
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("i18n", ROOT / "tools" / "i18n.py")
i18n = importlib.util.module_from_spec(spec)
spec.loader.exec_module(i18n)


def test_every_edition_is_current_and_fully_translated():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "i18n.py"), "check", "--lang", "ko"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr + "\n(run: python tools/i18n.py update, translate, build)"
    missing = sorted(set(i18n.english_notebooks()) - set(i18n.translated("ko")))
    assert missing == [], "no Korean catalog: python tools/i18n.py update --new NOTEBOOK, translate, build"


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """The notebooks and catalogs, copied: the tests change the English and watch the edition."""
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    monkeypatch.setattr(i18n, "NOTEBOOKS", tmp_path / "notebooks")
    return tmp_path / "notebooks"


def _edit(path: Path, cell_id: str, text: str | None) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, c in enumerate(nb.cells):
        if c.id == cell_id:
            if text is None:
                nb.cells.insert(i + 1, nbformat.v4.new_markdown_cell("A new paragraph."))
            else:
                c.source = text
    nbformat.write(nb, path)


def test_a_changed_english_cell_fails_until_its_translation_is_reviewed(copy):
    lesson = copy / "00_setup_and_tour.ipynb"
    _edit(lesson, "3f4743b1", "## 3. The same commands, changed")
    assert any("3f4743b1: the English changed or is new" in p for p in i18n.problems(lesson, "ko"))
    cat = i18n.catalog_path(lesson, "ko")
    i18n.merged(lesson, "ko", polib.pofile(str(cat), wrapwidth=0)).save(str(cat))        # update
    entry = next(e for e in polib.pofile(str(cat), wrapwidth=0) if e.msgctxt == "3f4743b1")
    assert "fuzzy" in entry.flags and entry.previous_msgid.startswith("## 3. The same commands a learner")
    assert entry.msgstr.startswith("## 3. EKS에서")       # the old translation kept, for review
    assert any("3f4743b1: fuzzy" in p for p in i18n.problems(lesson, "ko"))
    with pytest.raises(SystemExit, match="no current translation"):
        i18n.render(lesson, "ko")
    po = polib.pofile(str(cat), wrapwidth=0)
    e = next(e for e in po if e.msgctxt == "3f4743b1")
    e.msgstr, e.flags = "## 3. 바뀐 같은 명령", []
    po.save(str(cat))
    out = i18n.edition_path(lesson, "ko")
    out.write_text(i18n.render(lesson, "ko"))                                             # build
    assert i18n.problems(lesson, "ko") == []


def test_a_new_english_cell_is_untranslated_and_a_removed_one_is_left_over(copy):
    lesson = copy / "00_setup_and_tour.ipynb"
    _edit(lesson, "fe060d46", None)
    cat = i18n.catalog_path(lesson, "ko")
    i18n.merged(lesson, "ko", polib.pofile(str(cat), wrapwidth=0)).save(str(cat))
    assert [p for p in i18n.problems(lesson, "ko") if "not translated" in p]
    nb = nbformat.read(lesson, as_version=4)
    nb.cells = [c for c in nb.cells if c.id != "fe060d46"]
    nbformat.write(nb, lesson)
    assert any("fe060d46: no longer in the English notebook" in p for p in i18n.problems(lesson, "ko"))


def test_a_hand_edited_korean_notebook_is_stale(copy):
    lesson = copy / "00_setup_and_tour.ipynb"
    built = i18n.edition_path(lesson, "ko")
    built.write_text(built.read_text().replace("샌드박스", "sandbox", 1))
    assert any("is not built from the catalog" in p for p in i18n.problems(lesson, "ko"))


@pytest.mark.parametrize("english", i18n.translated("ko"), ids=lambda p: p.stem)
def test_the_korean_notebook_has_the_english_code_and_korean_text(english):
    en = nbformat.read(english, as_version=4)
    ko = nbformat.read(i18n.edition_path(english, "ko"), as_version=4)
    assert [c.id for c in en.cells] == [c.id for c in ko.cells]
    assert [c.source for c in en.cells if c.cell_type == "code"] == \
        [c.source for c in ko.cells if c.cell_type == "code"]
    for c in ko.cells:
        if c.cell_type == "markdown":
            assert re.search("[가-힣]", c.source), c.source
    nav = [c for c in ko.cells if i18n.NAV_TAG in c.metadata.get("tags", [])]
    assert all("[목차](../../README.md#한국어판)" in c.source for c in nav)


def _glossary() -> list[tuple[re.Pattern, str]]:
    rows = []
    for line in (ROOT / "notebooks" / "locale" / "ko" / "glossary.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            en, ko = line.split("\t")
            rows.append((re.compile(rf"(?<![\w`-]){en}(?![\w`-])", re.I), ko))
    return rows


def _prose(md: str) -> str:
    """Markdown without code blocks, code spans, placeholders and link targets (names, not words to
    translate)."""
    md = re.sub(r"```.*?```", "", md, flags=re.S)
    md = re.sub(r"`[^`]*`", "", md)
    md = re.sub(r"\{\w*(![rsa])?\}", "", md)  # a helper message's placeholders
    return re.sub(r"\]\([^)]*\)", "]", md)


def test_the_catalogs_use_the_glossarys_words():
    terms, missed = _glossary(), []
    for english in i18n.translated("ko"):
        for e in polib.pofile(str(i18n.catalog_path(english, "ko")), wrapwidth=0):
            for pattern, ko in terms:
                if pattern.search(_prose(e.msgid)) and ko not in e.msgstr:
                    missed.append(f"{english.name} {e.msgctxt}: {pattern.pattern!r} → {ko}")
    assert missed == []


def test_the_helpers_messages_use_the_glossarys_words():
    terms, missed = _glossary(), []
    for m in i18n.read_helpers("ko"):
        for pattern, ko in terms:
            if m.id and pattern.search(_prose(m.id)) and ko not in m.string:
                missed.append(f"{m.id!r}: {pattern.pattern!r} → {ko}")
    assert missed == []


@pytest.fixture
def helpers_copy(tmp_path, monkeypatch):
    """The helpers and their catalog, copied: the tests change a message and watch the catalog."""
    shutil.copytree(ROOT / "helpers", tmp_path / "helpers",
                    ignore=shutil.ignore_patterns("__pycache__", "sandbox", "classroom"))
    monkeypatch.setattr(i18n, "ROOT", tmp_path)
    monkeypatch.setattr(i18n, "HELPERS", tmp_path / "helpers")
    return tmp_path / "helpers"


OLD_404 = "404 Not Found: the object (or the API) does not exist."
NEW_404 = "404 Not Found: there is no such object (or API)."


def test_a_changed_helper_message_fails_until_its_translation_is_reviewed(helpers_copy):
    assert i18n.helpers_problems("ko") == []
    module = helpers_copy / "commands.py"
    module.write_text(module.read_text().replace(OLD_404, NEW_404))
    found = i18n.helpers_problems("ko")
    assert f"helpers {NEW_404!r}: the English changed or is new (run update)" in found
    assert f"helpers {OLD_404!r}: no longer in the helpers (run update)" in found
    i18n.update_helpers("ko")                                                          # update
    catalog = i18n.read_helpers("ko")
    m = catalog.get(NEW_404)
    assert m.fuzzy and "오브젝트" in m.string                                      # kept, for review
    assert polib.pofile(str(i18n.helpers_catalog_path("ko"))).find(NEW_404).previous_msgid == OLD_404
    assert catalog.get(OLD_404) is None
    assert i18n.helpers_problems("ko") == [f"helpers {NEW_404!r}: fuzzy (its English changed; review the translation)"]
    m.flags.discard("fuzzy")
    m.string = "404 Not Found: 그런 오브젝트(또는 API)가 없습니다."
    i18n.save_helpers("ko", catalog)                                                   # translate
    assert [p for p in i18n.helpers_problems("ko") if "(run build)" in p]
    i18n.helpers_catalog_path("ko", ".mo").write_bytes(i18n.compiled_helpers("ko"))  # build
    assert i18n.helpers_problems("ko") == []


def test_a_new_helper_message_is_untranslated(helpers_copy):
    module = helpers_copy / "widgets.py"
    module.write_text(module.read_text() + '\n\ndef later():\n    return _("a message added later")\n')
    i18n.update_helpers("ko")
    assert i18n.helpers_problems("ko") == ["helpers 'a message added later': not translated"]


def test_a_translation_that_drops_a_placeholder_fails(helpers_copy):
    catalog = i18n.read_helpers("ko")
    catalog.get("asked as {identity}").string = "물었습니다"
    i18n.save_helpers("ko", catalog)
    assert i18n.helpers_problems("ko") == [
        "helpers 'asked as {identity}': its placeholders [] are not the English's ['identity!None']"]


def test_the_glossary_check_sees_a_missed_word():
    terms = dict((p.pattern, ko) for p, ko in _glossary())
    pod = next(p for p, _ in _glossary() if "pods?" in p.pattern)
    assert not pod.search("Pod Security Admission replaced it") and not pod.search("EKS Pod Identity")
    assert pod.search(_prose("the pod runs")) and not pod.search(_prose("`kubectl get pods`"))
    assert not pod.search("the pod-identity webhook")
    assert terms[pod.pattern] == "파드"


def test_the_handout_runs_either_edition_in_the_same_order():
    from helpers import series
    en_base, en = series.notebooks("en")
    ko_base, ko = series.notebooks("ko")
    assert (en_base, ko_base) == (ROOT / "notebooks", ROOT / "notebooks" / "ko")
    assert [p.relative_to(ko_base) for p in ko] == [p.relative_to(en_base) for p in en]
    assert en[0].name == "00_setup_and_tour.ipynb" and en[-1].parent.name == "solutions"
    with pytest.raises(ValueError, match="no 'fr' edition"):
        series.notebooks("fr")
