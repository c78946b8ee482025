"""Live chat rooms' shared core: the screening contract (``screening``), flood rules (``flood``,
``similar``), escalation (``standing``) and the state they share across nodes (``board``, ``audit``)."""
