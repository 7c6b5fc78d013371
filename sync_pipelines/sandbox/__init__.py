"""Simulators of every source, served over HTTP on 127.0.0.1. lib/ and defs/ never import this (an import
contract in pyproject.toml); the CLI, the demo, the benchmarks and the tests do."""
