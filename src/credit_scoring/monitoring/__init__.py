"""Production monitoring: population stability against a reference frozen at training,
performance once outcomes mature, and the report a risk committee reads."""
