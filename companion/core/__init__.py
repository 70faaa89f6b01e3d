"""The shared base: errors, paths, device and precision, profiles, models, data, statistics, results, caches."""
