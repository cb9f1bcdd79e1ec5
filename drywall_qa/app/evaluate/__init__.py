"""The Evaluate tab: a split scored as `drywall-qa evaluate` does, with its table, sweep, panels and files."""
