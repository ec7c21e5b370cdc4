# METADATA
# title: Who may talk to OPA
# description: |
#   Evaluated by `opa run --server --authentication=token --authorization=basic` for every request.
#   The bearer token (input.identity) must equal the server's OPA_TOKEN environment variable, which
#   must be set and non-empty; only GET /health (liveness probes) is open. Everything else is refused.
package system.authz

default allow := false

allow if {
	input.method == "GET"
	input.path == ["health"]
}

allow if {
	token := opa.runtime().env.OPA_TOKEN
	is_string(token)
	token != ""
	input.identity == token
}
