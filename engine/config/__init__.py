"""The run configuration (run_config: RunConfig, the typed settings tree) and the models built from it (models)."""
