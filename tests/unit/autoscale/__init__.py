"""Tests of neuronfleet.autoscale (a package, so test module names never collide with other suites)."""
