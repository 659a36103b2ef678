"""The joint model and what is computed from it: NumPyro model, fitting, diagnostics,
posterior quantities, decision rules, estimands, sensitivity analyses and model checking."""
