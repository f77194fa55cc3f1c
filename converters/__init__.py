"""Source dataset converters: one module per dataset, each registered by name."""
