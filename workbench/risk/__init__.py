"""Risk context (domain): position limits, exposure and drawdown rules, pre-trade risk checks.

Empty for now; it has its own layer in the import contract (pyproject ``[tool.importlinter]``)
so risk rules can be written against the trading domain (and used by strategies) without
reaching up into engines, adapters or vendor libraries.
"""
