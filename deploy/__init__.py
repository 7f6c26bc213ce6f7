"""Container deployment of the query flow: export (docker compose, Kubernetes), images, the index job."""
