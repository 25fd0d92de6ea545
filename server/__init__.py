"""statemill's HTTP server: the AWS Step Functions API (JSON 1.0 protocol) over one database.

A thin layer over ``statemill.engine.Client``: each module holds one group of actions and translates AWS's request
and response shapes; every execution is run by the same engine and workers as ``statemill run`` and ``worker``.
"""
