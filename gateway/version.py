"""The installed version of RosettaMQ (pyproject.toml's, through the package metadata)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def gateway_version() -> str:
    try:
        return version("rosettamq")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0.1.0"
