"""What an operator reads: status frames and the live dashboard, plan reports, validate's preflight checks,
JSON output. May import every package but report/."""
