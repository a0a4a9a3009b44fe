"""What `./scripts/test` reports about itself: the tier of each test in its one pytest session
(`tiers`), the table of its stages with their counts and times and the budget they are held to
(`budget`), and which inputs decide whether the fresh-machine test must run again (`fresh`).

It lives in `infra/`, not `tests/`: the test command runs it from the installed package (the
set-up's editable install), and mypy checks `infra/` as part of that same command.
"""
