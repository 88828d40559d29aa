"""Local authority children's social care: JSON push, CSV file drop, SSDA903 import, LA-owned recommendations."""
