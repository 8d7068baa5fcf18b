//! A StarRocks 3.3–3.5 stand-in for tests, the demo and benchmarks. See docs/starrocks-spec.md.
