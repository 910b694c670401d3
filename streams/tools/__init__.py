"""Offline commands over topics: load (lateness: will a file be late?), rebuild, replay
(event_time_search: a range of event time by offsets), parity, lineage."""
