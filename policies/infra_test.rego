package swiftdeploy.infra_test

import data.swiftdeploy.infra

# A healthy host: every check passes with the thresholds in data.json.
good := {
	"disk_path": "/var/lib/containers",
	"disk_free_bytes": 50000000000,
	"disk_total_bytes": 100000000000,
	"load_1m": 0.5,
	"load_5m": 0.4,
	"load_15m": 0.3,
	"cpu_count": 2,
	"memory_available_bytes": 1000000000,
	"memory_total_bytes": 4000000000,
}

numeric_fields := [
	"cpu_count",
	"disk_free_bytes",
	"disk_total_bytes",
	"load_15m",
	"load_1m",
	"load_5m",
	"memory_available_bytes",
	"memory_total_bytes",
]

decide(changes) := d if {
	d := infra.decision with input as object.union(good, changes)
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
	data.infra == {"min_disk_free_gb": 10, "max_load_1m": 2.0}
}

test_decision_has_exactly_allow_and_reasons if {
	object.keys(decide({})) == {"allow", "reasons"}
}

test_healthy_host_is_allowed if allowed(decide({}))

# --- disk ------------------------------------------------------------------------------------------

test_disk_exactly_10_gb_passes if allowed(decide({"disk_free_bytes": 10000000000}))

test_disk_one_byte_below_10_gb_fails if {
	denied_for(decide({"disk_free_bytes": 9999999999}), [
		"disk free 9.999999999 GB on /var/lib/containers is below the minimum 10 GB",
	])
}

test_disk_reason_shows_two_decimals if {
	denied_for(decide({"disk_free_bytes": 8500000000}), [
		"disk free 8.50 GB on /var/lib/containers is below the minimum 10 GB",
	])
}

test_disk_reason_rounds_the_figure if {
	denied_for(decide({"disk_free_bytes": 1234567890}), [
		"disk free 1.23 GB on /var/lib/containers is below the minimum 10 GB",
	])
}

test_disk_zero_free_fails if {
	denied_for(decide({"disk_free_bytes": 0}), ["disk free 0.00 GB on /var/lib/containers is below the minimum 10 GB"])
}

test_disk_minimum_comes_from_data if {
	d := decide({"disk_free_bytes": 10000000000}) with data.infra.min_disk_free_gb as 10.5
	denied_for(d, ["disk free 10.00 GB on /var/lib/containers is below the minimum 10.5 GB"])
	allowed(decide({"disk_free_bytes": 8500000000})) with data.infra.min_disk_free_gb as 8
}

test_disk_reason_without_a_path_still_reports_the_figure if {
	denied_for(decide({"disk_free_bytes": 8500000000, "disk_path": ""}), [
		"disk free 8.50 GB on an unnamed path is below the minimum 10 GB",
		"input.disk_path is missing or not a non-empty string",
	])
}

# --- load ------------------------------------------------------------------------------------------

test_load_exactly_2_passes if allowed(decide({"load_1m": 2.0}))

test_load_integer_2_passes if allowed(decide({"load_1m": 2}))

test_load_just_above_2_fails if {
	denied_for(decide({"load_1m": 2.0001}), ["load_1m 2.0001 is above the limit 2.0"])
}

test_load_reason_text if {
	denied_for(decide({"load_1m": 2.35}), ["load_1m 2.35 is above the limit 2.0"])
}

test_load_limit_comes_from_data if {
	d := decide({"load_1m": 1.5}) with data.infra.max_load_1m as 1.25
	denied_for(d, ["load_1m 1.50 is above the limit 1.25"])
	allowed(decide({"load_1m": 3})) with data.infra.max_load_1m as 4
}

test_only_load_1m_is_limited if allowed(decide({"load_5m": 9, "load_15m": 9}))

# --- several failures at once ----------------------------------------------------------------------

test_several_failures_give_several_sorted_reasons if {
	d := decide({"disk_free_bytes": 8500000000, "load_1m": 2.35, "cpu_count": "2"})
	denied_for(d, [
		"disk free 8.50 GB on /var/lib/containers is below the minimum 10 GB",
		"input.cpu_count is missing or not a number",
		"load_1m 2.35 is above the limit 2.0",
	])
	d.reasons == sort(d.reasons)
}

# --- malformed input -------------------------------------------------------------------------------

test_each_missing_field_is_a_reason if {
	every field in numeric_fields {
		d := infra.decision with input as object.remove(good, [field])
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

test_each_negative_figure_is_a_reason if {
	every field in numeric_fields {
		d := decide({field: -1})
		d.allow == false
		sprintf("input.%s is -1; it cannot be negative", [field]) in d.reasons
	}
}

test_negative_load_reason_text if {
	denied_for(decide({"load_5m": -0.5}), ["input.load_5m is -0.5; it cannot be negative"])
}

test_missing_disk_path_is_a_reason if {
	d := infra.decision with input as object.remove(good, ["disk_path"])
	denied_for(d, ["input.disk_path is missing or not a non-empty string"])
}

test_wrong_type_disk_path_is_a_reason if {
	every bad in ["", null, 1, true, ["/"]] {
		denied_for(decide({"disk_path": bad}), ["input.disk_path is missing or not a non-empty string"])
	}
}

all_fields_missing := [
	"input.cpu_count is missing or not a number",
	"input.disk_free_bytes is missing or not a number",
	"input.disk_path is missing or not a non-empty string",
	"input.disk_total_bytes is missing or not a number",
	"input.load_15m is missing or not a number",
	"input.load_1m is missing or not a number",
	"input.load_5m is missing or not a number",
	"input.memory_available_bytes is missing or not a number",
	"input.memory_total_bytes is missing or not a number",
]

test_empty_input_names_every_field if {
	denied_for(infra.decision, all_fields_missing) with input as {}
}

test_input_that_is_not_an_object_names_every_field if {
	every bad in ["hello", 1, null, [good]] {
		denied_for(infra.decision, all_fields_missing) with input as bad
	}
}

test_no_input_at_all_is_denied if {
	denied_for(infra.decision, all_fields_missing)
}

# --- thresholds missing from data: fail closed -----------------------------------------------------

test_missing_thresholds_deny if {
	d := decide({}) with data.infra as {}
	denied_for(d, [
		"data.infra.max_load_1m is missing or not a number; the policy cannot decide",
		"data.infra.min_disk_free_gb is missing or not a number; the policy cannot decide",
	])
}

test_each_missing_threshold_denies if {
	d1 := decide({}) with data.infra as {"max_load_1m": 2.0}
	denied_for(d1, ["data.infra.min_disk_free_gb is missing or not a number; the policy cannot decide"])
	d2 := decide({}) with data.infra as {"min_disk_free_gb": 10}
	denied_for(d2, [
		"data.infra.max_load_1m is missing or not a number; the policy cannot decide",
	])
}

test_wrong_type_thresholds_deny if {
	every bad in ["10", null, true, [10]] {
		d := decide({}) with data.infra as {"min_disk_free_gb": bad, "max_load_1m": bad}
		denied_for(d, [
			"data.infra.max_load_1m is missing or not a number; the policy cannot decide",
			"data.infra.min_disk_free_gb is missing or not a number; the policy cannot decide",
		])
	}
}

test_infra_section_not_an_object_denies if {
	d := decide({}) with data.infra as "oops"
	d.allow == false
	count(d.reasons) == 2
}

# --- fail closed even if the reasons and the checks disagree ---------------------------------------

test_no_allow_when_checks_fail_without_a_reason if {
	d := infra.decision with input as {} with infra.problems as set()
	denied_for(d, ["the infra policy denied without a specific reason (policy bug)"])
}

test_no_allow_when_a_reason_exists_even_if_checks_pass if {
	d := decide({}) with infra.problems as {"something else"}
	denied_for(d, ["something else"])
}

# The allow rule also needs every check to pass on its own, so a reason that failed to render
# cannot turn into an allow. Each bad input fails those checks by itself:
test_checks_fail_on_their_own_for_every_bad_input if {
	every changes in [
		{"disk_free_bytes": 9999999999},
		{"load_1m": 2.0001},
		{"disk_path": ""},
	] {
		not infra.checks_pass with input as object.union(good, changes)
	}
	every field in numeric_fields {
		every bad in [-1, "1", null] {
			not infra.checks_pass with input as object.union(good, {field: bad})
		}
		not infra.checks_pass with input as object.remove(good, [field])
	}

	# a string compares above every number, so "2" would let any load through without the type check
	every limits in [{"min_disk_free_gb": 10}, {"min_disk_free_gb": 10, "max_load_1m": "2"}] {
		not infra.checks_pass with input as good with data.infra as limits
	}
}

test_checks_pass_for_a_good_input if infra.checks_pass with input as good

# --- number formatting -----------------------------------------------------------------------------

test_fixed_formats if {
	infra.fixed(8.5, 2) == "8.50"
	infra.fixed(10, 2) == "10.00"
	infra.fixed(0.004, 2) == "0.00"
	infra.fixed(1.005, 2) == "1.01"
	infra.fixed(-3.14159, 2) == "-3.14"
	infra.fixed(2, 1) == "2.0"
	infra.fixed(811.5, 0) == "812"
	infra.fixed(0, 0) == "0"
}

test_figure_avoids_looking_like_the_limit if {
	infra.figure(9.999, 10, 2) == "9.999"
	infra.figure(9.994, 10, 2) == "9.99"
	infra.figure(2.35, 2, 2) == "2.35"
}

test_limit_text if {
	infra.limit_text(2.0, 1) == "2.0"
	infra.limit_text(2.25, 1) == "2.25"
	infra.limit_text(10, 0) == "10"
}

# --- a cluster: every node judged, the failing ones named ---------------------------------------------

low_disk := object.union(good, {"disk_path": "/var/lib/docker", "disk_free_bytes": 50000000})

test_every_healthy_node_allows if {
	allowed(infra.decision) with input as {"nodes": {"sd-node1": good, "sd-node2": good, "sd-node3": good}}
}

test_one_full_node_denies_naming_only_it if {
	d := infra.decision with input as {"nodes": {"sd-node1": good, "sd-node2": low_disk, "sd-node3": good}}
	denied_for(d, ["node sd-node2: disk free 0.05 GB on /var/lib/docker is below the minimum 10 GB"])
}

test_each_failing_node_is_named_with_its_own_reason if {
	busy := object.union(good, {"load_1m": 7.25})
	d := infra.decision with input as {"nodes": {"a": busy, "b": low_disk, "c": good}}
	denied_for(d, [
		"node a: load_1m 7.25 is above the limit 2.0",
		"node b: disk free 0.05 GB on /var/lib/docker is below the minimum 10 GB",
	])
}

test_a_node_without_a_fact_is_named if {
	d := infra.decision with input as {"nodes": {"a": good, "b": object.remove(good, ["load_1m"])}}
	denied_for(d, ["node b: input.load_1m is missing or not a number"])
}

test_a_node_with_a_negative_or_unnamed_fact_is_named if {
	d := infra.decision with input as {"nodes": {"b": object.union(object.remove(good, ["disk_path"]), {"cpu_count": -1})}}
	denied_for(d, [
		"node b: input.cpu_count is -1; it cannot be negative",
		"node b: input.disk_path is missing or not a non-empty string",
	])
}

test_no_nodes_is_denied if {
	denied_for(infra.decision, ["input.nodes is empty: no node to judge"]) with input as {"nodes": {}}
}
