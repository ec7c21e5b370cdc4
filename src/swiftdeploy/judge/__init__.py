"""Facts measured, OPA asked: metrics scraped inside the stack or from Prometheus, nginx's request log, the
canary analysis over a window, and the gates that ask OPA and record question and answer. No threshold lives
here (the Rego does). Takes a stack by what it offers, so it never imports converge/. May import model/,
render/, engine/ and evidence/."""
