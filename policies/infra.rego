# METADATA
# title: Pre-deploy infrastructure gate
# description: |
#   Asked before anything is deployed or promoted, with facts measured on the engine's host (swiftdeploy.probe),
#   or on every node of a cluster.
#   Answers decision = {"allow": bool, "reasons": [sorted strings]}; thresholds come from data.infra only.
#   Fails closed: a missing or malformed input field, or a missing threshold, is a reason of its own.
package swiftdeploy.infra

# Fields the input must carry as non-negative numbers.
numeric_fields := {
	"cpu_count",
	"disk_free_bytes",
	"disk_total_bytes",
	"load_15m",
	"load_1m",
	"load_5m",
	"memory_available_bytes",
	"memory_total_bytes",
}

# Thresholds data.infra must carry as numbers.
thresholds := {"max_load_1m", "min_disk_free_gb"}

bytes_per_gb := 1000000000

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
} else := ["the infra policy denied without a specific reason (policy bug)"]

# The hosts judged: the engine's host (flat facts, as docs/CONTRACTS.md shows), or every node of a cluster
# ({"nodes": {"<name>": {flat facts}}}), whose reasons then start with "node <name>: ".
hosts := input.nodes if {
	is_object(input.nodes)
} else := {"": input} if {
	_ = input
} else := {"": {}} # no input at all: every field is missing

checks_pass if {
	count(hosts) > 0
	every name in thresholds {
		threshold(name)
	}
	every _, facts in hosts {
		host_passes(facts)
	}
}

host_passes(facts) if {
	every field in numeric_fields {
		number_in(facts, field)
		facts[field] >= 0
	}
	valid_path(facts)
	facts.disk_free_bytes >= data.infra.min_disk_free_gb * bytes_per_gb
	facts.load_1m <= data.infra.max_load_1m
}

# Lookups live in helper rules: `not is_number(facts[field])` is undefined, not true, when the field is
# absent (OPA lifts the reference out of the negation), which would hide exactly the missing fields.
number_in(facts, field) if is_number(facts[field])

threshold(name) if is_number(data.infra[name])

valid_path(facts) if {
	is_string(facts.disk_path)
	facts.disk_path != ""
}

disk_where(facts) := facts.disk_path if valid_path(facts)

else := "an unnamed path"

on(name, msg) := msg if name == ""

else := sprintf("node %s: %s", [name, msg])

problems contains "input.nodes is empty: no node to judge" if count(hosts) == 0

problems contains on(name, sprintf("input.%s is missing or not a number", [field])) if {
	some name, facts in hosts
	some field in numeric_fields
	not number_in(facts, field)
}

problems contains on(name, sprintf("input.%s is %v; it cannot be negative", [field, facts[field]])) if {
	some name, facts in hosts
	some field in numeric_fields
	number_in(facts, field)
	facts[field] < 0
}

problems contains on(name, "input.disk_path is missing or not a non-empty string") if {
	some name, facts in hosts
	not valid_path(facts)
}

problems contains sprintf("data.infra.%s is missing or not a number; the policy cannot decide", [name]) if {
	some name in thresholds
	not threshold(name)
}

problems contains on(name, msg) if {
	some name, facts in hosts
	number_in(facts, "disk_free_bytes")
	threshold("min_disk_free_gb")
	facts.disk_free_bytes < data.infra.min_disk_free_gb * bytes_per_gb
	limit := data.infra.min_disk_free_gb
	msg := sprintf("disk free %s GB on %s is below the minimum %s GB", [
		figure(facts.disk_free_bytes / bytes_per_gb, limit, 2),
		disk_where(facts),
		limit_text(limit, 0),
	])
}

problems contains on(name, msg) if {
	some name, facts in hosts
	number_in(facts, "load_1m")
	threshold("max_load_1m")
	facts.load_1m > data.infra.max_load_1m
	limit := data.infra.max_load_1m
	msg := sprintf("load_1m %s is above the limit %s", [figure(facts.load_1m, limit, 2), limit_text(limit, 1)])
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
