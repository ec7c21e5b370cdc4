package system.authz_test

import data.system.authz

token := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

with_token := {"env": {"OPA_TOKEN": token}}

decide_request := {
	"identity": token,
	"method": "POST",
	"path": ["v1", "data", "swiftdeploy", "infra", "decision"],
}

# --- the token -------------------------------------------------------------------------------------

test_matching_token_is_allowed if {
	authz.allow with input as decide_request with opa.runtime as with_token
}

test_matching_token_may_read_data if {
	authz.allow with input as {"identity": token, "method": "GET", "path": ["v1", "data"]}
		with opa.runtime as with_token
}

test_no_token_is_refused if {
	not authz.allow with input as object.remove(decide_request, ["identity"]) with opa.runtime as with_token
}

test_wrong_token_is_refused if {
	every wrong in ["nope", "", concat("", [token, "x"]), upper(token), null, 1, [token]] {
		not authz.allow with input as object.union(decide_request, {"identity": wrong}) with opa.runtime as with_token
	}
}

test_no_input_is_refused if {
	not authz.allow with opa.runtime as with_token
}

# --- OPA_TOKEN not configured: nobody gets in ------------------------------------------------------

test_unset_opa_token_refuses_everyone if {
	every identity in [token, "", null] {
		not authz.allow with input as object.union(decide_request, {"identity": identity})
			with opa.runtime as {"env": {}}
	}
}

test_empty_opa_token_refuses_an_empty_identity if {
	not authz.allow with input as object.union(decide_request, {"identity": ""})
		with opa.runtime as {"env": {"OPA_TOKEN": ""}}
}

test_runtime_without_env_refuses_everyone if {
	not authz.allow with input as decide_request with opa.runtime as {}
}

test_non_string_opa_token_refuses if {
	not authz.allow with input as object.union(decide_request, {"identity": 5})
		with opa.runtime as {"env": {"OPA_TOKEN": 5}}
}

# --- health probes ---------------------------------------------------------------------------------

test_health_get_needs_no_token if {
	authz.allow with input as {"method": "GET", "path": ["health"]} with opa.runtime as with_token
	authz.allow with input as {"method": "GET", "path": ["health"]} with opa.runtime as {"env": {}}
}

test_only_get_health_is_open if {
	every method in ["POST", "PUT", "DELETE", "PATCH", "HEAD"] {
		not authz.allow with input as {"method": method, "path": ["health"]} with opa.runtime as with_token
	}
}

test_other_paths_need_the_token if {
	every path in [["health", "live"], ["v1", "data"], ["v1", "policies"], ["metrics"], [], ["v1", "data", "system", "authz"]] {
		not authz.allow with input as {"method": "GET", "path": path} with opa.runtime as with_token
	}
}
