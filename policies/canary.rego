# METADATA
# title: Canary analysis
# description: |
#   Asked at every analysis of a rollout and before the canary becomes stable, with both tracks' figures
#   from the same window. Answers decision = {"allow", "verdict", "reasons", "notes"}:
#     verdict "pass": every check passes (allow is true, reasons empty);
#     verdict "fail": a limit is broken with enough data to say so, or the input or thresholds are malformed;
#     verdict "insufficient": not enough data to judge (too few requests, a short window): never an allow.
#   The canary is judged against the absolute limits and, when stable has enough requests in the same
#   window, against stable (error-rate difference, P99 ratio). All limits come from data.canary.
package swiftdeploy.canary

# Fields the input must carry as non-negative numbers (the canary's figures).
numeric_fields := {"errors", "requests", "window_seconds"}

# Fields that may also be null (swiftdeploy.metrics.window gives None), with what null means.
nullable_fields := {
	"error_rate": "no error rate in the window (no requests)",
	"p99_ms": "no latency observations in the window",
}

# Thresholds data.canary must carry as numbers.
thresholds := {
	"max_error_rate", "max_p99_ms", "min_requests", "min_window_seconds",
	"max_error_rate_increase", "max_p99_ratio", "p99_ratio_floor_ms", "min_requests_for_p99_ratio",
	"error_rate_increase_z",
}

default allow := false

allow if verdict == "pass"

decision := {"allow": allow, "verdict": verdict, "reasons": reasons, "notes": sort(notes)}

verdict := "fail" if {
	count(malformed) > 0
} else := "fail" if {
	count(failures) > 0
	enough_requests
} else := "insufficient" if {
	count(insufficient) > 0
} else := "pass" if {
	checks_pass
} else := "fail"

reasons := sort(malformed | failures) if {
	verdict == "fail"
	count(malformed | failures) > 0
} else := sort(insufficient) if {
	verdict == "insufficient"
} else := [] if {
	verdict == "pass"
} else := ["the canary policy denied without a specific reason (policy bug)"]

# A pass is decided by positive checks, never by the absence of reasons alone.
checks_pass if {
	every field in numeric_fields | object.keys(nullable_fields) {
		input_number(field)
		input[field] >= 0
	}
	every name in thresholds {
		threshold(name)
	}
	count(stable_problems) == 0
	input.window_seconds >= data.canary.min_window_seconds
	input.requests >= data.canary.min_requests
	input.error_rate <= data.canary.max_error_rate
	p99 <= data.canary.max_p99_ms
	relative_checks_pass
}

relative_checks_pass if not stable_comparable

relative_checks_pass if {
	stable_comparable
	not error_rate_increase_fails
	p99_ratio_ok
}

# The canary's error rate is above stable's plus the limit by more than chance: its errors exceed what that
# rate would give by error_rate_increase_z standard deviations (a one-sided binomial z-test, squared, as Rego
# has no square root). One error in 150 requests against none is 0.67 points above, and chance.
error_rate_increase_fails if {
	stable_comparable
	input.error_rate - input.stable.error_rate > data.canary.max_error_rate_increase
	bound := input.stable.error_rate + data.canary.max_error_rate_increase
	expected := input.requests * bound
	excess := input.errors - expected
	excess > 0
	excess * excess > (data.canary.error_rate_increase_z * data.canary.error_rate_increase_z) * (expected * (1 - bound))
}

p99_ratio_ok if not p99_ratio_applies

p99_ratio_ok if {
	p99_ratio_applies
	p99 / stable_p99 <= data.canary.max_p99_ratio
}

# --- figures --------------------------------------------------------------------------------------

# The P99 judged: nginx's exact figure from its access log when the input has one, else the histogram estimate.
p99 := input.p99_exact_ms if {
	is_number(input.p99_exact_ms)
} else := input.p99_ms

stable_p99 := input.stable.p99_exact_ms if {
	is_number(input.stable.p99_exact_ms)
} else := input.stable.p99_ms

enough_requests if {
	input_number("requests")
	threshold("min_requests")
	input.requests >= data.canary.min_requests
}

# Stable is compared only with enough requests of its own in the window.
stable_comparable if {
	count(stable_problems) == 0
	is_object(input.stable)
	input.stable.requests >= data.canary.min_requests
	is_number(input.stable.error_rate)
	input_number("error_rate")
}

# A P99 of fewer than 1/(1 - 0.99) = 100 requests is their maximum, and one of a few hundred rests on its few
# slowest requests: only P99s of enough requests are compared.
p99_ratio_applies if {
	stable_comparable
	input.requests >= data.canary.min_requests_for_p99_ratio
	input.stable.requests >= data.canary.min_requests_for_p99_ratio
	is_number(p99)
	is_number(stable_p99)
	stable_p99 > 0
	p99 > data.canary.p99_ratio_floor_ms
}

# --- input checks ---------------------------------------------------------------------------------

# Lookups live in helper rules: `not is_number(input[field])` is undefined, not true, when the field is
# absent (OPA lifts the reference out of the negation), which would hide exactly the missing fields.
input_number(field) if is_number(input[field])

threshold(name) if is_number(data.canary[name])

input_null(field) if input[field] == null

malformed contains sprintf("input.%s is missing or not a number", [field]) if {
	some field in numeric_fields
	not input_number(field)
}

malformed contains sprintf("input.%s is %v; it cannot be negative", [field, input[field]]) if {
	some field in (numeric_fields | object.keys(nullable_fields))
	input_number(field)
	input[field] < 0
}

malformed contains sprintf("input.%s is missing or neither a number nor null", [field]) if {
	some field, _ in nullable_fields
	not input_number(field)
	not input_null(field)
}

malformed contains sprintf("data.canary.%s is missing or not a number; the policy cannot decide", [name]) if {
	some name in thresholds
	not threshold(name)
}

malformed contains msg if {
	some msg in stable_problems
}

# input.stable is optional; when present and not null it must be well formed.
stable_problems contains "input.stable is neither an object nor null" if {
	"stable" in object.keys(input)
	input.stable != null
	not is_object(input.stable)
}

stable_problems contains sprintf("input.stable.%s is missing or not a non-negative number", [field]) if {
	is_object(input.stable)
	some field in {"requests", "errors"}
	not non_negative(input.stable, field)
}

stable_problems contains sprintf("input.stable.%s is missing or neither a non-negative number nor null", [field]) if {
	is_object(input.stable)
	some field in {"error_rate", "p99_ms"}
	not non_negative(input.stable, field)
	not input.stable[field] == null
}

non_negative(object, field) if {
	is_number(object[field])
	object[field] >= 0
}

# --- not enough data ------------------------------------------------------------------------------

insufficient contains meaning if {
	some field, meaning in nullable_fields
	input_null(field)
}

insufficient contains msg if {
	input_number("window_seconds")
	threshold("min_window_seconds")
	input.window_seconds < data.canary.min_window_seconds
	msg := sprintf("window %v s is shorter than the minimum %v s", [input.window_seconds, data.canary.min_window_seconds])
}

insufficient contains msg if {
	input_number("requests")
	threshold("min_requests")
	input.requests < data.canary.min_requests
	msg := sprintf("only %v requests in the window; at least %v needed", [input.requests, data.canary.min_requests])
}

# --- broken limits --------------------------------------------------------------------------------

# An absolute limit that stable breaks too, in the same window, does not point at the canary (a slow host,
# a failing dependency): the analysis holds instead of failing, unless the canary is also worse than stable.
error_rate_breach := msg if {
	input_number("error_rate")
	threshold("max_error_rate")
	input.error_rate > data.canary.max_error_rate
	limit := data.canary.max_error_rate * 100
	msg := sprintf("error rate %s%% is above the limit %s%%", [figure(input.error_rate * 100, limit, 2), limit_text(limit, 2)])
}

p99_breach := msg if {
	is_number(p99)
	threshold("max_p99_ms")
	p99 > data.canary.max_p99_ms
	limit := data.canary.max_p99_ms
	msg := sprintf("%s %s ms is above the limit %s ms", [p99_name, figure(p99, limit, 0), limit_text(limit, 0)])
}

stable_breaks_error_rate if {
	stable_comparable
	input.stable.error_rate > data.canary.max_error_rate
}

stable_breaks_p99 if {
	stable_comparable
	is_number(stable_p99)
	stable_p99 > data.canary.max_p99_ms
}

failures contains error_rate_breach if not stable_breaks_error_rate

failures contains p99_breach if not stable_breaks_p99

insufficient contains msg if {
	stable_breaks_error_rate
	msg := sprintf("%s, as is stable's %s%%: not the canary's doing, held", [error_rate_breach, fixed(input.stable.error_rate * 100, 2)])
}

insufficient contains msg if {
	stable_breaks_p99
	msg := sprintf("%s, as is stable's %s ms: not the canary's doing, held", [p99_breach, fixed(stable_p99, 0)])
}

failures contains msg if {
	error_rate_increase_fails
	increase := input.error_rate - input.stable.error_rate
	limit := data.canary.max_error_rate_increase * 100
	msg := sprintf("error rate %s%% is %s points above stable's %s%% (limit %s points)", [
		fixed(input.error_rate * 100, 2), figure(increase * 100, limit, 2),
		fixed(input.stable.error_rate * 100, 2), limit_text(limit, 2),
	])
}

failures contains msg if {
	p99_ratio_applies
	threshold("max_p99_ratio")
	ratio := p99 / stable_p99
	ratio > data.canary.max_p99_ratio
	limit := data.canary.max_p99_ratio
	msg := sprintf("%s %s ms is %sx stable's %s ms (limit %sx)", [
		p99_name, fixed(p99, 0), figure(ratio, limit, 2), fixed(stable_p99, 0), limit_text(limit, 2),
	])
}

p99_name := "p99 (exact)" if {
	is_number(input.p99_exact_ms)
} else := "p99"

# --- notes: what the verdict rests on -------------------------------------------------------------

notes contains sprintf("p99 judged on nginx's exact figure %s ms; the histogram estimate is %s", [fixed(input.p99_exact_ms, 0), estimate_text]) if {
	is_number(input.p99_exact_ms)
}

estimate_text := sprintf("%s ms", [fixed(input.p99_ms, 0)]) if {
	is_number(input.p99_ms)
} else := "not available"

notes contains "the histogram P99 estimate is saturated in its top bucket: the true P99 is above it" if {
	input.p99_saturated == true
}

notes contains "no stable figures in the window: judged against the absolute limits only" if {
	count(stable_problems) == 0
	not stable_given
}

stable_given if is_object(input.stable)

notes contains msg if {
	is_object(input.stable)
	count(stable_problems) == 0
	threshold("min_requests")
	input.stable.requests < data.canary.min_requests
	msg := sprintf("stable has only %v requests in the window: judged against the absolute limits only", [input.stable.requests])
}

notes contains sprintf("seen with too few requests to judge yet: %s", [msg]) if {
	not enough_requests
	some msg in failures
}

# --- number formatting ----------------------------------------------------------------------------
# (sprintf's %d/%f depend on whether OPA holds a number as an int or a float, so fixed decimals are
# built by hand.)

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
