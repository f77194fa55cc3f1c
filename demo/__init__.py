"""`make demo`: the whole pipeline on generated data. It sits above every other package:
it drives conversion, curricula, training and evaluation through their own entry points."""
