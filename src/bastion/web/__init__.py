"""The dashboard: approvals (and, later, inventory, calls, alerts, integrity), server-rendered."""
