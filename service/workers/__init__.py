"""Several server processes on one machine: their capacity, their shared run folder."""
