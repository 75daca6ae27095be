"""Calculators: definitions as data, a safe formula language, and the evaluator.

Pure core, no web code: ``compiler.parse_definition`` checks and compiles a definition,
``CompiledCalculator.evaluate`` turns a visitor's inputs into teaser and full results.
"""
