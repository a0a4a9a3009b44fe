"""Pulumi's entry point (runtime: python); the program lives in infra/program.py."""

from infra.program import run_program

run_program()
