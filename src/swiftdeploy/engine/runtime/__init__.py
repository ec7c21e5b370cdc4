"""Container runtimes SwiftDeploy drives. Compose (Docker Engine or any Docker-API engine) is the one."""
