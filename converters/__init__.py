"""Source dataset converters: one package per dataset, whose `__init__` imports the converter
module(s) that `@register` a name; discovery imports only these packages."""
