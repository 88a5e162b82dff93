"""A class on one machine: JupyterHub in front of a shared, read-only install of the lab, each
learner a system user with their own home, notebooks and sandbox.

  install     the shared install under a prefix (default /opt/eks-security-lab)
  learners    the learners' system accounts (a group, a home each, a password each)
  hubconfig   what classroom/jupyterhub_config.py sets (ports, PAM, the local spawner, hooks)
  singleuser  what a learner's server runs first: their own copy of the notebooks
  remote      run a notebook in a Jupyter server through its REST API and kernel websocket
  check       the scripted check: a hub, N learners, notebook 01 in all of them at once
"""
