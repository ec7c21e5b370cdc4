# METADATA
# title: Pre-promote canary gate
# description: |
#   Asked before the canary becomes stable, with the canary's metrics over the last window.
#   Answers decision = {"allow": bool, "reasons": [sorted strings]}; thresholds come from data.canary only.
#   Fails closed: a missing or malformed input field, or a missing threshold, is a reason of its own.
package swiftdeploy.canary

# Fields the input must carry as non-negative numbers.
numeric_fields := {"errors", "requests", "window_seconds"}

# Fields that may also be null (swiftdeploy.metrics.window gives None), with what null means.
nullable_fields := {
	"error_rate": "no error rate in the window (no requests)",
	"p99_ms": "no latency observations in the window",
}

# Thresholds data.canary must carry as numbers.
thresholds := {"max_error_rate", "max_p99_ms", "min_requests", "min_window_seconds"}

default allow := false

# Allowed only when every check positively passes and nothing was reported.
allow if {
	checks_pass
	count(problems) == 0
}

decision := {"allow": allow, "reasons": reasons}

reasons := sort(problems) if {
	count(problems) > 0
} else := [] if {
	checks_pass
} else := ["the canary policy denied without a specific reason (policy bug)"]

checks_pass if {
	every field in numeric_fields | object.keys(nullable_fields) {
		input_number(field)
		input[field] >= 0
	}
	every name in thresholds {
		threshold(name)
	}
	input.window_seconds >= data.canary.min_window_seconds
	input.requests >= data.canary.min_requests
	input.error_rate <= data.canary.max_error_rate
	input.p99_ms <= data.canary.max_p99_ms
}

# Lookups live in helper rules: `not is_number(input[field])` is undefined, not true, when the field is
# absent (OPA lifts the reference out of the negation), which would hide exactly the missing fields.
input_number(field) if is_number(input[field])

threshold(name) if is_number(data.canary[name])

input_null(field) if input[field] == null

problems contains sprintf("input.%s is missing or not a number", [field]) if {
	some field in numeric_fields
	not input_number(field)
}

problems contains sprintf("input.%s is %v; it cannot be negative", [field, input[field]]) if {
	some field in (numeric_fields | object.keys(nullable_fields))
	input_number(field)
	input[field] < 0
}

problems contains sprintf("input.%s is missing or neither a number nor null", [field]) if {
	some field, _ in nullable_fields
	not input_number(field)
	not input_null(field)
}

problems contains meaning if {
	some field, meaning in nullable_fields
	input_null(field)
}

problems contains sprintf("data.canary.%s is missing or not a number; the policy cannot decide", [name]) if {
	some name in thresholds
	not threshold(name)
}

problems contains msg if {
	input_number("window_seconds")
	threshold("min_window_seconds")
	input.window_seconds < data.canary.min_window_seconds
	msg := sprintf("window %v s is shorter than the minimum %v s", [input.window_seconds, data.canary.min_window_seconds])
}

problems contains msg if {
	input_number("requests")
	threshold("min_requests")
	input.requests < data.canary.min_requests
	msg := sprintf("only %v requests in the window; at least %v needed", [input.requests, data.canary.min_requests])
}

problems contains msg if {
	input_number("error_rate")
	threshold("max_error_rate")
	input.error_rate > data.canary.max_error_rate
	limit := data.canary.max_error_rate * 100
	msg := sprintf("error rate %s%% is above the limit %s%%", [figure(input.error_rate * 100, limit, 2), limit_text(limit, 2)])
}

problems contains msg if {
	input_number("p99_ms")
	threshold("max_p99_ms")
	input.p99_ms > data.canary.max_p99_ms
	limit := data.canary.max_p99_ms
	msg := sprintf("p99 %s ms is above the limit %s ms", [figure(input.p99_ms, limit, 0), limit_text(limit, 0)])
}

# Number formatting (sprintf's %d/%f depend on whether OPA holds a number as an int or a float, so
# fixed decimals are built by hand).

# x rounded to 0, 1 or 2 decimals: fixed(8.5, 2) == "8.50".
fixed(x, places) := concat("", [sign(x), format_int(floor(n / scale), 10), decimals(n % scale, scale)]) if {
	scale := {0: 1, 1: 10, 2: 100}[places]
	n := round(abs(x) * scale)
}

sign(x) := "-" if {
	x < 0
} else := ""

decimals(_, 1) := ""

decimals(rest, scale) := concat("", [".", substring(format_int(scale + rest, 10), 1, -1)]) if scale > 1

# A measured figure shown next to its limit: rounded, unless rounding would make it look like the limit.
figure(x, limit, places) := sprintf("%v", [x]) if {
	fixed(x, places) == fixed(limit, places)
} else := fixed(x, places)

# A limit: with `places` decimals when that shows it exactly, else as OPA prints it.
limit_text(limit, places) := fixed(limit, places) if {
	to_number(fixed(limit, places)) == limit
} else := sprintf("%v", [limit])
