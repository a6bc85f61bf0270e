"""Helpers every test suite shares: waiting on a condition, and the CRDs that ship in crds/.

Plain functions, no pytest magic, so unit, integration, contract, end-to-end and real-vLLM tests
(and the benchmarks) all use the same ones: `support.waits`, `support.crds`.
"""
