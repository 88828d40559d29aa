"""Tests of gateway.imports (kwg import register)."""
