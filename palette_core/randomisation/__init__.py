"""Within a trait: allocation probabilities (pure JAX), the arm lifecycle, the concealed draw
and the hash-chained allocation log."""
