"""What the notebooks import, one job per module (see README, "Repository layout").

Notebook-facing: lab, checks, decisions, fixtures, admission, commands, magics, tokens, authz,
rbac, widgets, diagrams, eksctl, cleanup, series. They ask `target.current()` for whatever
differs between the sandbox and a real cluster (implementations in helpers/targets/) and never
import helpers/sandbox/ themselves. `facts` holds the constants both sides share; `cli` is
`./lab …`. tests/test_boundaries.py keeps these rules.
"""
