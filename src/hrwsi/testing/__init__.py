"""Stand-ins and helpers shipped with the package, used by the tests, benchmarks and the demo."""
