"""`bastion dashboard`'s banner: where the dashboard is and how to sign in.

The command itself is wired in the composition root (`bastion.runtime_http.serve_dashboard`).
"""

from __future__ import annotations

__all__ = ["dashboard_banner"]


def dashboard_banner(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return (
        f"bastion: dashboard at http://{shown}:{port}/ "
        "(sign in with a token from `bastion tokens create --client NAME --role approver`)"
    )
