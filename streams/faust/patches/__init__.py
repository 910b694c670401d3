"""Everything that reaches into Faust's private API, behind one version guard
(``private_api.require_tested_faust``): the helpers the rest of ticktide reads Faust's state
through (private_api.py) and the fixes to its start, rebalances and stop (lifecycle.py) and
to its fetching on the embedded broker (embedded.py)."""
