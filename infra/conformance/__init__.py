"""Nightly conformance as one command: up, doctor, smoke suite, teardown and its verification,
with a report directory per run and a history that the HTML report is drawn from."""
