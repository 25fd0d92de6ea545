"""The Amazon States Language JSON Schema used by the validator (``asl.schema.json``)."""
