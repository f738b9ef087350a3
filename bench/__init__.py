"""The throughput benchmark (`make bench`): the full change against a bare workflow on one server.
Not part of the service; see bench/run.py and bench/README.md."""
