"""``palette analyse``: the interim analysis of a data export and its open and closed reports."""
