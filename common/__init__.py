"""Shared library of the repository: every piece of logic the notebooks and scripts use lives here.

Sub-packages by role: ``common.smile`` (HadaSmileNet study), ``common.fer`` (HAFEM study); top-level modules are
the study-independent foundation (paths, registry, config, provenance, results, batch).
"""
