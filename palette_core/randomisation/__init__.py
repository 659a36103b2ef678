"""Within a trait: allocation probabilities (pure JAX), the arm lifecycle, the concealed draw
and the hash-chained allocation log; the JSON records they write and read are defined once, in
:mod:`palette_core.randomisation.records`."""
