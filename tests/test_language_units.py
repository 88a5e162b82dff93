"""The helpers speak the learner's language (issue #18, item 2): which language a kernel picks, the
Korean it then writes (what a 401 or 403 means, a check's hint, the explorer's answer, our own
table headers), and what stays verbatim: what the tools print, and the names code uses."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

from helpers import authz, checks, commands, language, target, widgets

ROOT = Path(__file__).resolve().parents[1]
UNAUTHORIZED = "error: You must be logged in to the server (Unauthorized)\n"
FORBIDDEN = ('Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:dev-team:dev-k8s" '
             'cannot list resource "pods" in API group "" in the namespace "kube-system"\n')


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No language chosen, no locale, run from a folder that is no edition."""
    monkeypatch.setattr(language, "_chosen", None)
    for var in ("EKS_LAB_LANG", "JPY_SESSION_NAME", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
def korean(env):
    env.setenv("EKS_LAB_LANG", "ko")


def test_english_unless_something_says_otherwise(env):
    assert language.available()[0] == "en" and "ko" in language.available()
    assert language.current() == "en"
    env.setenv("LANG", "C.UTF-8")
    assert language.current() == "en"


def test_the_locale_then_the_edition_then_the_variable_then_configure(env, tmp_path):
    env.setenv("LANG", "ko_KR.UTF-8")
    assert language.current() == "ko"
    env.setenv("LC_MESSAGES", "en_US.UTF-8")  # POSIX order: LC_ALL, LC_MESSAGES, LANG
    assert language.current() == "en"
    env.setenv("LC_ALL", "fr_FR.UTF-8")  # a language the helpers do not speak: English
    assert language.current() == "en"
    env.setenv("JPY_SESSION_NAME", str(ROOT / "notebooks" / "ko" / "solutions" / "01_serviceaccounts_roles.ipynb"))
    assert language.current() == "ko"
    env.setenv("JPY_SESSION_NAME", "00_setup_and_tour.ipynb")  # JupyterLab's English edition
    assert language.current() == "en"
    env.setenv("EKS_LAB_LANG", "ko")
    assert language.current() == "ko"
    target.configure(lang="en")
    assert language.current() == "en"
    language.set_language(None)
    assert language.current() == "ko"


def test_a_kernel_started_in_the_korean_folder_speaks_korean(env, tmp_path):
    """nbclient (and `jupyter nbconvert --execute`) start the kernel in the notebook's folder and
    set no session name."""
    (tmp_path / "ko" / "solutions").mkdir(parents=True)
    env.chdir(tmp_path / "ko" / "solutions")
    assert language.current() == "ko"


def test_a_language_it_does_not_speak_is_a_clear_error_or_a_warning_said_once(env):
    with pytest.raises(ValueError, match=r"lang='fr': the helpers speak en, ko"):
        target.configure(lang="fr")
    assert language.current() == "en"  # nothing half-set
    env.setenv("EKS_LAB_LANG", "klingon")
    language._unknown_in_environment.cache_clear()
    with pytest.warns(UserWarning, match=r"EKS_LAB_LANG='klingon': the helpers speak en, ko; they write English"):
        assert language.current() == "en"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not at every message
        assert language._("Expected") == "Expected" and language.current() == "en"


def test_what_a_refusal_means_in_korean_and_the_tools_words_verbatim(korean):
    r = commands.Result("kubectl get pods", 1, "", UNAUTHORIZED)
    assert r.refusal == "401" and r.meaning.startswith("401 Unauthorized: API 서버가")
    assert "인증 실패" in r.meaning
    html = r._repr_html_()
    assert "You must be logged in to the server (Unauthorized)" in html  # kubectl's own words
    f = commands.Result("kubectl get pods -n kube-system", 1, "", FORBIDDEN)
    assert f.refusal == "403" and "인가 실패" in f.meaning
    assert checks.expect(f, denied=403) is f  # the check compares the refusal, not its wording
    with pytest.raises(checks.Unexpected, match=r"403이\(가\) 아닙니다: 401 Unauthorized: API 서버가") as e:
        checks.expect(r, denied=403)
    assert "--- 실제 출력:" in str(e.value)


def test_a_check_and_its_hint_in_korean(korean):
    shown = repr(checks.check(False, "x", "y"))
    assert shown == "✖ 아직입니다. 힌트: y"
    assert "아직입니다. 힌트:" in checks.check(False, "x", "<y>")._repr_html_()
    quiz = widgets.Exercise("q?", widgets.one_of("a"), "h")
    assert repr(quiz.submit("a")) == "✔ 정답"


def test_the_explanation_in_korean_keeps_the_rbac_names(korean):
    ident = authz.Identity("system:serviceaccount:dev-team:dev-k8s", ["system:serviceaccounts"])
    d = authz.Decision(False, "", ident, authz.Request("list", "pods", namespace="kube-system"))
    assert d.explain().startswith("거부: ") and "RBAC 규칙이 없습니다" in d.explain()
    assert "system:serviceaccount:dev-team:dev-k8s" in d.explain()
    assert "✖ 아니요" in d._repr_html_()


def test_table_headers_translated_when_shown_while_code_keeps_the_english_names(korean):
    table = checks.can_i_table("me", [("get", "pods", "default")], can=lambda *a, **k: True)
    assert list(table.columns) == ["verb", "resource", "namespace", "allowed"]
    assert bool(table["allowed"].iloc[0])
    shown = language.show_table(table)
    assert "<th>허용</th>" in shown and "<th>네임스페이스</th>" in shown and ">allowed<" not in shown
    assert list(table.columns) == ["verb", "resource", "namespace", "allowed"]  # not renamed in place
    mine = pd.DataFrame({"allowed": [1]})  # a learner's own table: not ours to relabel
    assert ">allowed<" in language.show_table(mine)


def test_ipython_shows_our_tables_translated():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    language.register(ip)
    table = language.headers(pd.DataFrame({"namespace": ["default"]}))
    try:
        language.set_language("ko")
        data, _ = ip.display_formatter.format(table)
        assert "<th>네임스페이스</th>" in data["text/html"]
    finally:
        language.set_language("en")
    data, _ = ip.display_formatter.format(table)
    assert "네임스페이스" not in data["text/html"] and ">namespace<" in data["text/html"]


def test_no_message_hides_in_an_f_string():
    """Babel's extractor (on Python 3.11) cannot see a `_("…")` inside an f-string: such a message
    would never reach the catalog and stay English."""
    hidden = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "helpers").rglob("*.py"))
              for n, line in enumerate(p.read_text().splitlines(), 1)
              if re.search(r"""\bf(["'])[^"']*\{[^}]*\b_\(["']""", line)]
    assert hidden == []
