"""What admission changed: a pod as submitted beside the pod as stored (notebook 05)."""

from __future__ import annotations


def spec_diff(submitted: dict, stored: dict, volume: str = "aws-iam-token") -> list[str]:
    """A unified diff of the containers' env and mounts, and of one volume, before and after
    admission."""
    import difflib

    import yaml

    def keep(spec: dict) -> dict:
        return {
            "containers": [
                {k: c.get(k) for k in ("name", "env", "volumeMounts") if c.get(k)}
                for c in spec["containers"]
            ],
            "volumes": [v for v in spec.get("volumes") or [] if v["name"] == volume],
        }

    before = yaml.safe_dump(keep(submitted["spec"]), sort_keys=False).splitlines()
    after = yaml.safe_dump(keep(stored["spec"]), sort_keys=False).splitlines()
    return list(difflib.unified_diff(before, after, "submitted", "stored", lineterm=""))
