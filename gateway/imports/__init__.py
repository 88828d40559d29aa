"""Imports from the files partners keep: Dynamic Support Register spreadsheets (``kwg import register``)."""
