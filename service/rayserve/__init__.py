"""digitpass on Ray Serve: scale out over several machines (the ``ray`` extra)."""
