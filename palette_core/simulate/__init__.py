"""The trial simulator: virtual trials as pure JAX programs, scanned over looks and vectorised over trials."""
