"""The two implementations of helpers.target.Target, one module each (as kind keeps one provider
per backend): `sandbox` (this machine's sandbox) and `cluster` (a real EKS cluster and AWS
account). Only helpers.target imports them; everything else asks `target.current()`.
"""
