"""Energy and greenhouse-gas accounting: counters, sources, factors, indicators, rollups."""
