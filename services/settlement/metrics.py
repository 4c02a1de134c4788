"""Prometheus metrics of the settlement service, declared once."""

from prometheus_client import Counter, Histogram

__all__ = ["CLOSES", "CLOSE_SECONDS", "EXPORTS"]

CLOSE_SECONDS = Histogram("convergence_settlement_close_seconds", "Time to close a period, catch-up included.",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
CLOSES = Counter("convergence_settlement_closes_total", "Close requests.", ["outcome"])
EXPORTS = Counter("convergence_settlement_exports_total", "Payroll pulls of approved settlements.")
for _outcome in ("closed", "not_ended", "refused", "timeout"):  # at 0 from the start: a first failure is an increase
    CLOSES.labels(_outcome)
