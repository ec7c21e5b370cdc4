"""The world as it is: the Docker API and CLI tools, the runtimes that drive Compose or Swarm, image builds,
and the host probes the infra gate reads. May import model/ and render/ (Swarm renders its stack file)."""
