"""The gated linear recurrence h_t = a_t * h_{t-1} + x_t behind every HGRU (see docs/ARCHITECTURE.md section 1)."""
from .scan import IMPLEMENTATIONS, hgrn_scan, hgrn_scan_bidirectional

__all__ = ["IMPLEMENTATIONS", "hgrn_scan", "hgrn_scan_bidirectional"]
