"""The learner's language for what the helpers write for people: what a 401 or 403 means, exercise
checks and hints, preflight, the explorer's answers and our own table headers. What the tools print
(kubectl, aws, the API server) is never translated: it reads as it does on a real cluster.

The language is, first that wins: `lab.configure(lang="ko")`; `EKS_LAB_LANG`; the edition of the
notebook this kernel runs (a notebook in notebooks/ko/ speaks Korean: Jupyter names it in
JPY_SESSION_NAME, and starts the kernel in its folder); the locale (LC_ALL, LC_MESSAGES, LANG);
English. Messages are a gettext domain, helpers/locale/<lang>/LC_MESSAGES/eks_lab.po (compiled to
.mo beside it), kept in step with the code by `python tools/i18n.py update|check`.
"""

from __future__ import annotations

import functools
import gettext
import os
import warnings
from pathlib import Path

DOMAIN = "eks_lab"
LOCALEDIR = Path(__file__).resolve().parent / "locale"
ENGLISH = "en"

_chosen: str | None = None


@functools.cache
def available() -> tuple[str, ...]:
    """English and every language the helpers have a compiled catalog for (read once: each
    message asks)."""
    found = sorted(p.parents[1].name for p in LOCALEDIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))
    return (ENGLISH, *found)


def _short(value: str) -> str:
    """ko_KR.UTF-8 → ko; C and POSIX say nothing about a language."""
    code = value.split(".")[0].split("@")[0].split("_")[0].strip().lower()
    return "" if code in ("c", "posix") else code


def set_language(lang: str | None) -> None:
    """Choose the language for this kernel (None: back to the environment's)."""
    global _chosen
    if lang is not None and _short(lang) not in available():
        raise ValueError(
            f"lang={lang!r}: the helpers speak {', '.join(available())} "
            "(a new language starts with a catalog under helpers/locale/)"
        )
    _chosen = _short(lang) if lang is not None else None


def _edition() -> str:
    """The language of the notebook's edition: the folder it is in (notebooks/ko/…, or
    notebooks/ko/solutions/…)."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    folder = Path(session).parent if session.endswith(".ipynb") else Path.cwd()
    if folder.name == "solutions":
        folder = folder.parent
    return folder.name if folder.name != ENGLISH and folder.name in available() else ""


def current() -> str:
    if _chosen:
        return _chosen
    wanted = os.environ.get("EKS_LAB_LANG", "")
    if wanted:
        if _short(wanted) in available():
            return _short(wanted)
        _unknown_in_environment(wanted)
        return ENGLISH
    edition = _edition()
    if edition:
        return edition
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        code = _short(os.environ.get(name, ""))
        if code:
            return code if code in available() else ENGLISH
    return ENGLISH


@functools.cache
def _unknown_in_environment(wanted: str) -> None:
    """Said once, not raised: every message asks for the language, and an error there would
    break each cell (and IPython's table display) instead of saying it once."""
    spoken = ", ".join(available())
    warnings.warn(f"EKS_LAB_LANG={wanted!r}: the helpers speak {spoken}; they write English "
                  "until it names one of those (or is unset)", stacklevel=3)


@functools.cache
def _catalog(lang: str) -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, str(LOCALEDIR), languages=[lang], fallback=True)


def _(message: str) -> str:
    """MESSAGE in the learner's language (itself where there is no translation)."""
    return _catalog(current()).gettext(message)


def N_(message: str) -> str:
    """Marks a message for the catalog where it is translated later, when shown (table
    headers: code keeps using the English column names)."""
    return message


def headers(df):
    """DF, marked so that its column and index names are shown translated (see `show_table`)."""
    df.attrs["eks_lab_headers"] = True
    return df


def show_table(df) -> str | None:
    """The HTML of a DataFrame, its marked headers in the learner's language (IPython calls this
    for every DataFrame once `register` ran)."""
    if df.attrs.get("eks_lab_headers") and current() != ENGLISH:
        shown = df.rename(columns=lambda c: _(c) if isinstance(c, str) else c)
        shown.index.names = [_(n) if isinstance(n, str) else n for n in df.index.names]
        shown.attrs = {}
        return shown._repr_html_()
    return df._repr_html_()


def register(ip) -> None:
    import pandas as pd

    ip.display_formatter.formatters["text/html"].for_type(pd.DataFrame, show_table)
