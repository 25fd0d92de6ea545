"""Example state machines and the demo handlers they use."""
