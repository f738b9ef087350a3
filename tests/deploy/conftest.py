"""The deploy room: docker-compose.yml read against the code it deploys. No Docker engine runs
here and these tests start no service, so the room has no fixtures of its own."""
