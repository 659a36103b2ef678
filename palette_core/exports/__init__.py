"""A trial data export: its contract, the day-28 outcomes derived from it, and a synthetic
export with known effects."""
