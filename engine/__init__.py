"""statemill engine: load, validate and durably run Amazon States Language state machines."""
