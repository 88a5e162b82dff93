# JupyterHub for a class on one machine: `sudo ./lab classroom hub` starts it with this file.
# Everything it sets is in helpers/classroom/hubconfig.py (with its environment variables);
# add your own settings below it, e.g. c.JupyterHub.template_vars or an idle culler.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.classroom import hubconfig

hubconfig.apply(c)  # noqa: F821 (JupyterHub's config object)
