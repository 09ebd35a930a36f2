"""StudyBot benchmarks: `python -m bench <name>` or `python -m bench all` (run from the project root).

Every benchmark prints JSON lines {"name", "value", "unit", "baseline", "ratio", ...}. The baseline is
measured in the same process run (these machines are noisy), and `ratio` is always value / baseline;
the extra key "better" says which direction is good. Where the issue gives an absolute target, the
line carries "target" and "target_met".
"""
