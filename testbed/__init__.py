"""Process helpers shared by the tests and the benchmarks: real servers and services on loopback."""
