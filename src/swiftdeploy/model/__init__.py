"""The manifest: load it once, validate it against its published JSON Schema, edit it in place keeping its
comments. Imports nothing of SwiftDeploy but the modules beside the package (errors, files)."""
