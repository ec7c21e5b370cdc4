package swiftdeploy.canary_test

import data.swiftdeploy.canary

# A healthy canary window: every check passes with the thresholds in data.json.
good := {
	"window_seconds": 30,
	"requests": 200,
	"errors": 0,
	"error_rate": 0,
	"p99_ms": 120,
}

numeric_fields := ["errors", "requests", "window_seconds"]

nullable_fields := ["error_rate", "p99_ms"]

decide(changes) := d if {
	d := canary.decision with input as object.union(good, changes)
}

allowed(d) if {
	d.allow == true
	d.reasons == []
}

denied_for(d, reasons) if {
	d.allow == false
	d.reasons == reasons
}

# --- data.json carries the contract's thresholds --------------------------------------------------

test_data_thresholds_match_the_contract if {
	data.canary == {
		"max_error_rate": 0.01, "max_p99_ms": 500, "min_requests": 20, "min_window_seconds": 30,
		"max_error_rate_increase": 0.005, "max_p99_ratio": 1.5, "p99_ratio_floor_ms": 100,
		"min_requests_for_p99_ratio": 500, "error_rate_increase_z": 2.33,
	}
}

test_decision_has_exactly_allow_verdict_reasons_and_notes if {
	object.keys(decide({})) == {"allow", "verdict", "reasons", "notes"}
}

test_healthy_canary_is_allowed if allowed(decide({}))

test_every_figure_exactly_at_its_limit_passes if {
	allowed(decide({"window_seconds": 30, "requests": 20, "errors": 0, "error_rate": 0.01, "p99_ms": 500}))
}

# --- error rate ------------------------------------------------------------------------------------

test_error_rate_exactly_1_percent_passes if allowed(decide({"errors": 2, "error_rate": 0.01}))

test_error_rate_slightly_above_1_percent_fails if {
	denied_for(decide({"error_rate": 0.0100001}), ["error rate 1.00001% is above the limit 1.00%"])
}

test_error_rate_reason_text if {
	denied_for(decide({"errors": 104, "error_rate": 0.52}), ["error rate 52.00% is above the limit 1.00%"])
}

test_error_rate_reason_rounds_the_figure if {
	denied_for(decide({"error_rate": 0.0123456}), ["error rate 1.23% is above the limit 1.00%"])
}

test_error_rate_null_means_no_requests if {
	denied_for(decide({"error_rate": null}), ["no error rate in the window (no requests)"])
}

test_error_rate_of_everything_fails if {
	denied_for(decide({"error_rate": 1}), ["error rate 100.00% is above the limit 1.00%"])
}

test_error_rate_limit_comes_from_data if {
	d := decide({"error_rate": 0.04}) with data.canary.max_error_rate as 0.025
	denied_for(d, ["error rate 4.00% is above the limit 2.50%"])
	allowed(decide({"error_rate": 0.04})) with data.canary.max_error_rate as 0.05
}

test_error_rate_limit_with_more_decimals_is_shown_exactly if {
	d := decide({"error_rate": 0.0013}) with data.canary.max_error_rate as 0.00125
	denied_for(d, ["error rate 0.13% is above the limit 0.125%"])
}

# --- p99 -------------------------------------------------------------------------------------------

test_p99_exactly_500_passes if allowed(decide({"p99_ms": 500}))

test_p99_500_point_1_fails if {
	denied_for(decide({"p99_ms": 500.1}), ["p99 500.1 ms is above the limit 500 ms"])
}

test_p99_reason_text if {
	denied_for(decide({"p99_ms": 812}), ["p99 812 ms is above the limit 500 ms"])
}

test_p99_reason_rounds_the_figure if {
	denied_for(decide({"p99_ms": 811.6}), ["p99 812 ms is above the limit 500 ms"])
}

test_p99_limit_comes_from_data if {
	d := decide({"p99_ms": 300}) with data.canary.max_p99_ms as 250
	denied_for(d, ["p99 300 ms is above the limit 250 ms"])
	allowed(decide({"p99_ms": 900})) with data.canary.max_p99_ms as 1000
}

test_p99_null_means_no_observations if {
	denied_for(decide({"p99_ms": null}), ["no latency observations in the window"])
}

test_p99_missing_is_a_reason if {
	d := canary.decision with input as object.remove(good, ["p99_ms"])
	denied_for(d, ["input.p99_ms is missing or neither a number nor null"])
}

test_p99_wrong_type_is_a_reason if {
	every bad in ["500", true, [500], {"ms": 500}] {
		denied_for(decide({"p99_ms": bad}), ["input.p99_ms is missing or neither a number nor null"])
	}
}

test_p99_negative_is_a_reason if {
	denied_for(decide({"p99_ms": -1}), ["input.p99_ms is -1; it cannot be negative"])
}

# --- request count ---------------------------------------------------------------------------------

test_exactly_min_requests_passes if allowed(decide({"requests": 20}))

test_one_request_short_fails if {
	denied_for(decide({"requests": 19}), ["only 19 requests in the window; at least 20 needed"])
}

test_few_requests_reason_text if {
	denied_for(decide({"requests": 3}), ["only 3 requests in the window; at least 20 needed"])
}

test_min_requests_comes_from_data if {
	d := decide({"requests": 50}) with data.canary.min_requests as 100
	denied_for(d, ["only 50 requests in the window; at least 100 needed"])
}

# --- window ----------------------------------------------------------------------------------------

test_window_exactly_min_passes if allowed(decide({"window_seconds": 30}))

test_window_just_short_fails if {
	denied_for(decide({"window_seconds": 29.999}), ["window 29.999 s is shorter than the minimum 30 s"])
}

test_short_window_reason_text if {
	denied_for(decide({"window_seconds": 12}), ["window 12 s is shorter than the minimum 30 s"])
}

test_min_window_comes_from_data if {
	d := decide({"window_seconds": 45}) with data.canary.min_window_seconds as 60
	denied_for(d, ["window 45 s is shorter than the minimum 60 s"])
}

# --- several failures at once ----------------------------------------------------------------------

test_several_failures_give_several_sorted_reasons if {
	d := decide({"requests": 100, "errors": 52, "error_rate": 0.52, "p99_ms": 812})
	denied_for(d, [
		"error rate 52.00% is above the limit 1.00%",
		"p99 812 ms is above the limit 500 ms",
	])
	d.verdict == "fail"
	d.reasons == sort(d.reasons)
}

# Failing fast: a broken limit with enough requests fails even before the window is full; passing needs the
# whole window.
test_a_broken_limit_fails_before_the_window_is_full if {
	d := decide({"window_seconds": 12, "requests": 100, "errors": 20, "error_rate": 0.2})
	d.verdict == "fail"
	denied_for(d, ["error rate 20.00% is above the limit 1.00%"])
}

test_idle_canary_gives_every_traffic_reason if {
	d := decide({"window_seconds": 30, "requests": 0, "errors": 0, "error_rate": null, "p99_ms": null})
	denied_for(d, [
		"no error rate in the window (no requests)",
		"no latency observations in the window",
		"only 0 requests in the window; at least 20 needed",
	])
}

# --- malformed input -------------------------------------------------------------------------------

test_each_missing_field_is_a_reason if {
	every field in numeric_fields {
		d := canary.decision with input as object.remove(good, [field])
		denied_for(d, [sprintf("input.%s is missing or not a number", [field])])
	}
}

test_each_wrong_type_is_a_reason if {
	every field in numeric_fields {
		every bad in ["1", null, true, false, [1], {"v": 1}] {
			d := decide({field: bad})
			d.allow == false
			sprintf("input.%s is missing or not a number", [field]) in d.reasons
		}
	}
}

test_each_missing_or_wrong_type_nullable_field_is_a_reason if {
	every field in nullable_fields {
		reason := sprintf("input.%s is missing or neither a number nor null", [field])
		d := canary.decision with input as object.remove(good, [field])
		denied_for(d, [reason])
		every bad in ["1", true, false, [1], {"v": 1}] {
			denied_for(decide({field: bad}), [reason])
		}
	}
}

test_each_negative_figure_is_a_reason if {
	every field in array.concat(numeric_fields, nullable_fields) {
		d := decide({field: -1})
		d.allow == false
		sprintf("input.%s is -1; it cannot be negative", [field]) in d.reasons
	}
}

all_fields_missing := [
	"input.error_rate is missing or neither a number nor null",
	"input.errors is missing or not a number",
	"input.p99_ms is missing or neither a number nor null",
	"input.requests is missing or not a number",
	"input.window_seconds is missing or not a number",
]

test_empty_input_names_every_field if {
	denied_for(canary.decision, all_fields_missing) with input as {}
}

test_input_that_is_not_an_object_names_every_field if {
	every bad in ["hello", 1, null, [good]] {
		denied_for(canary.decision, all_fields_missing) with input as bad
	}
}

test_no_input_at_all_is_denied if {
	denied_for(canary.decision, all_fields_missing)
}

# --- thresholds missing from data: fail closed -----------------------------------------------------

all_thresholds_missing := sort([sprintf("data.canary.%s is missing or not a number; the policy cannot decide", [name]) |
	some name in [
		"max_error_rate", "max_error_rate_increase", "max_p99_ms", "max_p99_ratio", "min_requests",
		"error_rate_increase_z", "min_requests_for_p99_ratio", "min_window_seconds", "p99_ratio_floor_ms",
	]
])

test_missing_thresholds_deny if {
	d := decide({}) with data.canary as {}
	denied_for(d, all_thresholds_missing)
	d.verdict == "fail"
}

test_each_missing_threshold_denies if {
	every name in object.keys(data.canary) {
		d := decide({}) with data.canary as object.remove(data.canary, [name])
		denied_for(d, [sprintf("data.canary.%s is missing or not a number; the policy cannot decide", [name])])
	}
}

test_wrong_type_thresholds_deny if {
	every bad in ["10", null, true, [10]] {
		d := decide({}) with data.canary as {name: bad | some name in object.keys(data.canary)}
		denied_for(d, all_thresholds_missing)
	}
}

test_canary_section_not_an_object_denies if {
	d := decide({}) with data.canary as "oops"
	denied_for(d, all_thresholds_missing)
}

# --- fail closed even if the reasons and the checks disagree ---------------------------------------

test_no_allow_when_checks_fail_without_a_reason if {
	d := canary.decision with input as {} with canary.malformed as set()
	denied_for(d, ["the canary policy denied without a specific reason (policy bug)"])
	d.verdict == "fail"
}

test_no_allow_when_a_reason_exists_even_if_checks_pass if {
	d := decide({}) with canary.malformed as {"something else"}
	denied_for(d, ["something else"])
}

# The allow rule also needs every check to pass on its own, so a reason that failed to render
# cannot turn into an allow. Each bad input fails those checks by itself:
test_checks_fail_on_their_own_for_every_bad_input if {
	every changes in [
		{"window_seconds": 29.999},
		{"requests": 19},
		{"error_rate": 0.0100001},
		{"p99_ms": 500.1},
		{"p99_ms": -1},
		{"p99_ms": null},
	] {
		not canary.checks_pass with input as object.union(good, changes)
	}
	every field in array.concat(numeric_fields, nullable_fields) {
		every bad in [-1, "1", null] {
			not canary.checks_pass with input as object.union(good, {field: bad})
		}
		not canary.checks_pass with input as object.remove(good, [field])
	}

	# a string compares above every number, so "0.01" would let any error rate through without the type check
	every limits in [
		{"max_error_rate": 0.01},
		object.union(data.canary, {"max_error_rate": "0.01", "max_p99_ms": "500"}),
	] {
		not canary.checks_pass with input as good with data.canary as limits
	}
}

test_checks_pass_for_a_good_input if canary.checks_pass with input as good

# --- number formatting -----------------------------------------------------------------------------

test_fixed_formats if {
	canary.fixed(52, 2) == "52.00"
	canary.fixed(0.004, 2) == "0.00"
	canary.fixed(-3.14159, 2) == "-3.14"
	canary.fixed(2, 1) == "2.0"
	canary.fixed(811.5, 0) == "812"
}

test_figure_avoids_looking_like_the_limit if {
	canary.figure(500.1, 500, 0) == "500.1"
	canary.figure(1.004, 1, 2) == "1.004"
	canary.figure(52, 1, 2) == "52.00"
}

test_limit_text if {
	canary.limit_text(1, 2) == "1.00"
	canary.limit_text(0.125, 2) == "0.125"
	canary.limit_text(500, 0) == "500"
}

# --- verdicts --------------------------------------------------------------------------------------

test_a_healthy_canary_passes if {
	d := decide({})
	d.verdict == "pass"
	d.notes == ["no stable figures in the window: judged against the absolute limits only"]
}

test_too_few_requests_is_insufficient_not_a_failure if {
	d := decide({"requests": 5, "errors": 0})
	d.verdict == "insufficient"
	denied_for(d, ["only 5 requests in the window; at least 20 needed"])
}

test_a_short_window_is_insufficient if {
	d := decide({"window_seconds": 29.9})
	d.verdict == "insufficient"
	denied_for(d, ["window 29.9 s is shorter than the minimum 30 s"])
}

test_a_broken_limit_with_too_few_requests_is_insufficient_and_noted if {
	d := decide({"requests": 5, "errors": 5, "error_rate": 1})
	d.verdict == "insufficient"
	denied_for(d, ["only 5 requests in the window; at least 20 needed"])
	"seen with too few requests to judge yet: error rate 100.00% is above the limit 1.00%" in d.notes
}

test_no_traffic_is_insufficient if {
	d := decide({"requests": 0, "errors": 0, "error_rate": null, "p99_ms": null})
	d.verdict == "insufficient"
	d.allow == false
}

test_malformed_input_fails_even_with_too_few_requests if {
	d := decide({"requests": 5, "errors": "x"})
	d.verdict == "fail"
	denied_for(d, ["input.errors is missing or not a number"])
}

# --- the exact P99 from nginx's access log ----------------------------------------------------------

test_the_exact_p99_is_judged_when_present if {
	d := decide({"p99_ms": 2485, "p99_exact_ms": 1004})
	denied_for(d, ["p99 (exact) 1004 ms is above the limit 500 ms"])
	"p99 judged on nginx's exact figure 1004 ms; the histogram estimate is 2485 ms" in d.notes
}

test_an_exact_p99_under_the_limit_passes_beside_a_coarse_estimate if {
	d := decide({"p99_ms": 700, "p99_exact_ms": 480})
	d.verdict == "pass"
}

test_a_null_exact_p99_falls_back_to_the_estimate if {
	denied_for(decide({"p99_ms": 812, "p99_exact_ms": null}), ["p99 812 ms is above the limit 500 ms"])
}

test_an_exact_p99_without_an_estimate_is_noted if {
	d := decide({"p99_ms": null, "p99_exact_ms": 120})
	d.verdict == "insufficient"
	"p99 judged on nginx's exact figure 120 ms; the histogram estimate is not available" in d.notes
}

test_a_saturated_estimate_is_noted if {
	d := decide({"p99_ms": 60000, "p99_saturated": true})
	"the histogram P99 estimate is saturated in its top bucket: the true P99 is above it" in d.notes
	d.verdict == "fail"
}

# --- canary against stable --------------------------------------------------------------------------

stable_good := {"requests": 2000, "errors": 0, "error_rate": 0, "p99_ms": 110}

# Both tracks with enough requests for every relative rule (the canary's count can be changed too).
against(changes, stable_changes) := decide(object.union(
	object.union({"requests": 2000}, changes),
	{"stable": object.union(stable_good, stable_changes)},
))

test_a_canary_like_stable_passes_with_no_notes if {
	d := against({}, {})
	d.verdict == "pass"
	d.notes == []
}

test_an_error_rate_within_the_absolute_limit_but_well_above_stable_fails if {
	d := against({"requests": 20000, "errors": 160, "error_rate": 0.008}, {"requests": 20000, "errors": 20, "error_rate": 0.001})
	denied_for(d, ["error rate 0.80% is 0.70 points above stable's 0.10% (limit 0.50 points)"])
}

test_an_error_rate_increase_exactly_at_the_limit_passes if {
	d := against({"requests": 20000, "errors": 120, "error_rate": 0.006}, {"requests": 20000, "errors": 20, "error_rate": 0.001})
	d.verdict == "pass"
}

# A limit stable breaks too does not point at the canary: the analysis holds (never a pass).
test_an_error_rate_stable_shares_holds_instead_of_failing if {
	d := against({"errors": 100, "error_rate": 0.05}, {"errors": 100, "error_rate": 0.05})
	d.verdict == "insufficient"
	denied_for(d, ["error rate 5.00% is above the limit 1.00%, as is stable's 5.00%: not the canary's doing, held"])
}

test_a_p99_stable_shares_holds_instead_of_failing if {
	d := against({"p99_ms": 770}, {"p99_ms": 607})
	d.verdict == "insufficient"
	denied_for(d, ["p99 770 ms is above the limit 500 ms, as is stable's 607 ms: not the canary's doing, held"])
}

test_a_shared_breach_still_fails_when_the_canary_is_also_worse_than_stable if {
	d := against({"p99_ms": 1600}, {"p99_ms": 600})
	denied_for(d, ["p99 1600 ms is 2.67x stable's 600 ms (limit 1.50x)"])
	d.verdict == "fail"
}

test_stable_with_too_few_requests_does_not_excuse_a_breach if {
	d := against({"p99_ms": 770}, {"requests": 5, "p99_ms": 900})
	denied_for(d, ["p99 770 ms is above the limit 500 ms"])
}

test_p99s_of_fewer_than_500_requests_are_not_compared_by_ratio if {
	# the P99 of 60 requests is their maximum
	d := against({"requests": 60, "p99_ms": 400}, {"p99_ms": 150})
	d.verdict == "pass"
	e := against({"p99_ms": 400}, {"requests": 499, "p99_ms": 150})
	e.verdict == "pass"
}

test_an_error_rate_increase_that_may_be_chance_passes if {
	# 1 error in 150 against none in 2000: 0.67 points, above 0.5, but well within chance
	d := against({"requests": 150, "errors": 1, "error_rate": 0.00667}, {"errors": 0, "error_rate": 0})
	d.verdict == "pass"

	# 16 in 2000 (0.8 %) against 0.1 %: still within chance of 0.6 %
	e := against({"errors": 16, "error_rate": 0.008}, {"errors": 2, "error_rate": 0.001})
	e.verdict == "pass"
}

test_a_p99_far_above_stable_fails_even_under_the_absolute_limit if {
	d := against({"p99_ms": 400}, {"p99_ms": 150})
	denied_for(d, ["p99 400 ms is 2.67x stable's 150 ms (limit 1.50x)"])
}

test_the_p99_ratio_uses_both_exact_figures if {
	d := against({"p99_ms": 400, "p99_exact_ms": 210}, {"p99_ms": 400, "p99_exact_ms": 130})
	denied_for(d, ["p99 (exact) 210 ms is 1.62x stable's 130 ms (limit 1.50x)"])
}

test_a_p99_ratio_exactly_at_the_limit_passes if {
	d := against({"p99_ms": 300}, {"p99_ms": 200})
	d.verdict == "pass"
}

test_fast_tracks_are_not_judged_by_ratio if {
	# 90 ms against 10 ms is 9x, but under the floor of 100 ms
	d := against({"p99_ms": 90}, {"p99_ms": 10})
	d.verdict == "pass"
}

test_stable_with_too_few_requests_is_not_compared if {
	d := against({"errors": 18, "error_rate": 0.009}, {"requests": 3, "error_rate": 0})
	d.verdict == "pass"
	d.notes == ["stable has only 3 requests in the window: judged against the absolute limits only"]
}

test_stable_with_a_null_p99_is_compared_on_errors_only if {
	d := against({"p99_ms": 400}, {"p99_ms": null})
	d.verdict == "pass"
}

test_a_malformed_stable_fails_naming_the_field if {
	denied_for(against({}, {"requests": "many"}), ["input.stable.requests is missing or not a non-negative number"])
	denied_for(against({}, {"p99_ms": -3}), ["input.stable.p99_ms is missing or neither a non-negative number nor null"])
	denied_for(decide({"stable": "yes"}), ["input.stable is neither an object nor null"])
}

test_a_null_stable_is_absolute_only if {
	d := decide({"stable": null})
	d.verdict == "pass"
	d.notes == ["no stable figures in the window: judged against the absolute limits only"]
}

test_relative_checks_fail_on_their_own if {
	not canary.checks_pass with input as object.union(good, {
		"requests": 20000, "errors": 160, "error_rate": 0.008,
		"stable": object.union(stable_good, {"requests": 20000, "errors": 20, "error_rate": 0.001}),
	})
	not canary.checks_pass with input as object.union(good, {"requests": 2000, "p99_ms": 400, "stable": stable_good})
}
