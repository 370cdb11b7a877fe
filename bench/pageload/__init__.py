"""Helpers of bench_pageload.py (the blank NiceGUI app it compares against)."""
