"""Nightly conformance as one command: up, doctor, smoke suite, teardown and its verification,
with a report directory per run and a history that the HTML report is drawn from.

`runner` sequences the steps, one module each (`doctor`, `up`, `upgrade`, `smoke`, `teardown`),
which share one `session.Run` and the run's `workspace`. Below them: what the steps read and
check (`objects`, `data_guard`, `user_state`, `upgrade_checks`) and what the run leaves (`record`,
`timeline`, `summary`, `history`, `report`)."""
