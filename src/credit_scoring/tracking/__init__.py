"""MLflow tracking and registry, and packaging the registry's champion for BentoML."""
