"""The Dynamic Support Register and keyworking rules engine: pure functions from domain events to Tasks.

- :mod:`~gateway.register.working_days`: working days in England (bank holidays from ``holidays``).
- :mod:`~gateway.register.config`: :class:`RulesConfig`, every figure with its default; loaded from JSON or TOML.
- :mod:`~gateway.register.rules`: events (RatingChanged, Discharged, ReviewHeld, CaseMoved, ContactMade) and the
  ``on_*`` functions that turn them into an :class:`~gateway.register.outcomes.Outcome`.
- :mod:`~gateway.register.tasks`: RuleTask ⇄ FHIR Task, and closing a Task.
- :mod:`~gateway.register.overdue`: the overdue sweep (``Task?business-status=overdue``).

Nothing here reads settings, the clock or the store; the domain service calls these functions and writes the
results in its own transaction. docs/rules.md lists the rules.
"""
