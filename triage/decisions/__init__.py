"""The decision log: every scored ticket on record, expert outcomes joined to it, reports and drift over it."""
