"""Tables and figures from raw results: run ``python statistical_analysis/run_tests.py`` (see README.md here)."""
