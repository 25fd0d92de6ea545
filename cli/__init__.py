"""The ``statemill`` command line."""
