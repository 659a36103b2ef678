"""Tests of the book's chapter modules (a package, so that their names may repeat those of
other test folders, e.g. test_decisions)."""
