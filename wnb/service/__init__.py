"""The service: wnb's operations over one database and one ruleset (wnb/service/orchestrator.py), and the
stages and jobs around it (effects, the sweep's scheduler, simulate, scenarios, explain, feeds)."""

from wnb.service.base import utc_now
from wnb.service.orchestrator import Service

__all__ = ["Service", "utc_now"]
